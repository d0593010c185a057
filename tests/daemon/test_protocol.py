"""The daemon speaks Doow's ingest protocol: the same answers as the collector (which plays
Doow) for the same requests; the local token; the Unix socket; the health endpoint; the
bind policy."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from .conftest import Upstream
from .helpers import (
    CLIENT_KEY,
    DaemonProcess,
    daemon,
    finish,
    free_port,
    post,
    start_client,
    stored,
)

TOKEN = "dk_local_token_of_this_daemon_0123"


def good(n: int = 0, **overrides: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "license_id": f"lic-proto-{n}",
        "occurred_at": "2026-11-22T10:15:30.123Z",
        "kind": "USAGE",
        "measurements": [{"metric_name": "api_calls", "quantity": 1}],
        **overrides,
    }


def body(events: Any, batch_id: str | None = "same") -> bytes:
    document: dict[str, Any] = {"events": events}
    if batch_id is not None:
        document["batch_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, batch_id))
    return json.dumps(document).encode()


REQUESTS: dict[str, tuple[bytes, dict[str, str]]] = {
    "valid": (body([good(0), good(1)]), {}),
    "valid, gzip": (gzip.compress(body([good(2)])), {"Content-Encoding": "gzip"}),
    "no batch id": (body([good(3)], batch_id=None), {}),
    "some invalid": (
        body(
            [
                good(4),
                good(5, event_id="not-a-uuid"),
                good(6, measurements=[{"metric_name": "api_calls", "quantity": -1}]),
                good(7, occurred_at="yesterday"),
                good(8, attribution={"nested": {"no": 1}}),
                "not an object",
            ]
        ),
        {},
    ),
    "malformed JSON": (b'{"events": [', {}),
    "not an object": (b"[1, 2]", {}),
    "events not an array": (json.dumps({"events": {}}).encode(), {}),
    "no events": (body([]), {}),
    "bad batch id": (json.dumps({"batch_id": 7, "events": [good(9)]}).encode(), {}),
    "too many events": (body([good(10 + n) for n in range(501)]), {}),
    "NaN": (b'{"events": [{"quantity": NaN}]}', {}),
    "truncated gzip": (gzip.compress(body([good(20)]))[:-8], {"Content-Encoding": "gzip"}),
    "unknown encoding": (body([good(21)]), {"Content-Encoding": "br"}),
}


def comparable(status: int, answer: Any) -> tuple[int, Any]:
    """The answer without what legitimately differs: a batch id either server made up."""
    if isinstance(answer, dict) and "batch_id" in answer:
        answer = {**answer, "batch_id": "<given or new>"}
    return status, answer


def test_the_daemon_answers_each_request_as_the_collector_does(
    upstream: Upstream, tmp_path: Path
) -> None:
    with daemon(tmp_path, upstream.url) as running:
        for name, (payload, encoding) in REQUESTS.items():
            headers = {"Authorization": f"Bearer {CLIENT_KEY}", **encoding}
            daemon_status, _, daemon_answer = post(
                f"{running.url}/telemetry/events", payload, headers
            )
            direct_status, _, direct_answer = post(
                f"{upstream.url}/telemetry/events", payload, headers
            )
            assert comparable(daemon_status, daemon_answer) == comparable(
                direct_status, direct_answer
            ), name
        running.wait_drained()
        assert running.stop() == 0
    # What the daemon accepted arrived (once: the collector had it directly too).
    assert upstream.collector.stats()["duplicates"] == 5
    assert set(stored(upstream.db)) == {f"lic-proto-{n}" for n in (0, 1, 2, 3, 4)}


def test_with_a_local_token_only_clients_presenting_it_are_taken(
    upstream: Upstream, tmp_path: Path
) -> None:
    with daemon(tmp_path, upstream.url, env={"DOOW_TRACK_DAEMON_TOKEN": TOKEN}) as running:
        url = f"{running.url}/telemetry/events"
        for given in (None, "Bearer dk_some_other_key_0000", f"Bearer {TOKEN}x", TOKEN):
            headers = {} if given is None else {"Authorization": given}
            status, _, answer = post(url, body([good(0)]), headers)
            assert (status, answer["errorClass"]) == (401, "Unauthorized"), given
        assert post(url, body([good(1)]), {"Authorization": f"Bearer {TOKEN}"})[0] == 202
        # An SDK presents the token as its API key; the real key stays with the daemon.
        [report] = finish([start_client("ours", running.url, "ours-1", 100, "--key", TOKEN)])
        assert report["delivered"] == 100, report
        running.wait_drained()
        assert running.stop() == 0
    assert TOKEN not in running.log
    assert len(stored(upstream.db)) == 101


def test_the_unix_socket_takes_batches_too_and_a_killed_daemons_socket_is_replaced(
    upstream: Upstream, tmp_path: Path
) -> None:
    path = str(tmp_path / "doow.sock")
    running = DaemonProcess(tmp_path, upstream.url, "--socket", path, "--listen", "off")
    try:
        running.start(ready=False)
        for start in range(2):
            wait_for_socket(path)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
            status, answer = unix_post(path, body([good(start)]))
            assert (status, answer["accepted"]) == (202, 1)
            if start == 0:
                running.kill()  # the socket file stays behind
                assert os.path.exists(path)
                running.start(ready=False)
        status_answer = unix_get(path, "/healthz")
        assert status_answer["accepted"] == 1
        assert running.stop() == 0
    finally:
        running.close()
    assert not os.path.exists(path)
    assert set(stored(upstream.db)) == {"lic-proto-0", "lic-proto-1"}


def wait_for_socket(path: str) -> None:
    import time

    deadline = time.monotonic() + 20
    while True:
        try:
            unix_get(path, "/healthz")
            return
        except OSError:
            assert time.monotonic() < deadline, "the socket did not come up"
            time.sleep(0.05)


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def unix_post(path: str, payload: bytes) -> tuple[int, Any]:
    connection = UnixConnection(path)
    connection.request("POST", "/telemetry/events", payload, {"Content-Type": "application/json"})
    answer = connection.getresponse()
    result = answer.status, json.loads(answer.read())
    connection.close()
    return result


def unix_get(path: str, target: str) -> Any:
    connection = UnixConnection(path)
    connection.request("GET", target)
    document = json.loads(connection.getresponse().read())
    connection.close()
    return document


def test_other_paths_and_methods_and_the_health_endpoint(
    upstream: Upstream, tmp_path: Path
) -> None:
    with daemon(tmp_path, upstream.url) as running:
        status = running.status()
        assert status["status"] == "ok"
        assert status["spool_max_bytes"] == 256 * 1024 * 1024
        assert post(f"{running.url}/elsewhere", b"{}")[0] == 404
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
        connection.request("GET", "/telemetry/events")
        answer = connection.getresponse()
        assert (answer.status, answer.getheader("Allow")) == (405, "POST")
        assert json.loads(answer.read())["errorClass"] == "MethodNotAllowed"
        connection.close()
        # b"\xb9" is latin-1 for "¹", which str.isdigit() takes for a digit and int() refuses.
        for length in (b"\xb9", b"-1", b"1e3", b"12, 13"):
            raw = socket.create_connection(("127.0.0.1", running.port), timeout=10)
            raw.sendall(
                b"POST /telemetry/events HTTP/1.1\r\nContent-Length: " + length + b"\r\n\r\n"
            )
            status_line = raw.makefile("rb").readline()  # b"" if it closed without answering
            assert status_line.split()[1:2] == [b"400"], (length, status_line)
            raw.close()
        assert running.stop() == 0


def run_daemon(
    tmp_path: Path, *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "doow_serverless",
            "daemon",
            "--spool-dir",
            str(tmp_path / "spool"),
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.mark.parametrize(
    ("arguments", "env", "message"),
    [
        (("--listen", "0.0.0.0:0"), {}, "not a loopback address, needs --allow-remote"),
        (("--listen", "0.0.0.0:0", "--allow-remote"), {}, "needs a local token"),
        (("--listen", "127.0.0.1:0"), {"DOOW_TRACK_DAEMON_TOKEN": "short"}, "at least 16"),
        (("--endpoint", "http://127.0.0.1:9"), {"DOOW_TRACK_API_KEY": ""}, "no API key"),
    ],
)
def test_settings_the_daemon_cannot_run_with_stop_it_at_once_saying_why(
    tmp_path: Path, arguments: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    key = () if "DOOW_TRACK_API_KEY" in env else ("--api-key", "dk_test_0000000000000")
    completed = run_daemon(tmp_path, *key, *arguments, env=env)
    assert completed.returncode == 2
    assert message in completed.stderr
    assert "short" not in completed.stderr.replace("at least 16", "")


def test_a_remote_bind_with_the_flag_and_a_token_starts_and_asks_for_the_token(
    upstream: Upstream, tmp_path: Path
) -> None:
    port = free_port()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    running = DaemonProcess(
        tmp_path, upstream.url, "--allow-remote", "--token-file", str(token_file)
    )
    running.arguments[running.arguments.index("--listen") + 1] = f"0.0.0.0:{port}"
    running.url = f"http://127.0.0.1:{port}"
    try:
        running.start()
        assert post(f"{running.url}/telemetry/events", body([good(0)]))[0] == 401
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert post(f"{running.url}/telemetry/events", body([good(0)]), headers)[0] == 202
        assert running.stop() == 0
    finally:
        running.close()
    assert TOKEN not in running.log

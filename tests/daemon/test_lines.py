"""The line inputs: NDJSON over TCP (acknowledged once durable) and followed files, whose
cursor is on disk, so a restart or a SIGHUP never reads a line again, and a kill at worst
re-reads lines that keep their ids."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path

from doow_serverless import DoowTracker

from .conftest import Upstream
from .helpers import DaemonProcess, daemon, free_port, stored, wait_until


def line(name: str, n: int, **extra: object) -> str:
    return json.dumps(
        {"metric": "api_calls", "quantity": 1, "license_id": f"lic-{name}-{n}", **extra}
    )


def exchange(port: int, text: str) -> list[dict[str, object]]:
    """Send lines, half-close, and read every answer line to the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(text.encode())
        connection.shutdown(socket.SHUT_WR)
        answer = connection.makefile("rb").read()
    return [json.loads(item) for item in answer.splitlines()]


def append(path: Path, lines: list[str]) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write("".join(item + "\n" for item in lines))


def test_lines_over_tcp_are_acknowledged_once_durable_and_bad_ones_say_why(
    upstream: Upstream, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "doow-track.json"
    config.write_text(json.dumps({"attribution": {"service": "billing-worker"}}))
    with daemon(
        tmp_path, upstream.url, "--lines-port", str(port), "--config", str(config)
    ) as running:
        answers = exchange(
            port,
            "\n".join(
                [
                    line("tcp", 0),
                    "{not json",
                    line("tcp", 1, attribution={"model": "gpt-4o"}),
                    line("tcp", 2, quantity=0),
                    "",
                    line("tcp", 3, idempotency_key="order-17"),
                ]
            )
            + "\n"
            + line("tcp", 4),  # the last line, without a newline: read at the client's EOF
        )
        assert answers[-1] == {"acked": 7}
        errors = {item["line"]: item["error"] for item in answers if "line" in item}
        assert errors.keys() == {2, 4}
        assert str(errors[2]).startswith("malformed JSON")
        assert str(errors[4]).startswith("quantity must be greater than 0")  # as Doow says it
        # The same idempotency key again, from another connection: one event.
        assert exchange(port, line("tcp", 3, idempotency_key="order-17") + "\n") == [{"acked": 1}]
        running.wait_drained()
        assert running.stop() == 0
    rows = stored(upstream.db)
    assert rows == {f"lic-tcp-{n}": 1 for n in (0, 1, 3, 4)}
    events = {event["license_id"]: event for event in upstream.collector.events()}
    assert events["lic-tcp-0"]["attribution"] == {"service": "billing-worker"}
    assert events["lic-tcp-1"]["attribution"] == {"service": "billing-worker", "model": "gpt-4o"}
    # The id an idempotency key gives is the one DoowTracker gives it, in any process.
    tracker = DoowTracker("dk_test_0000000000000", endpoint=upstream.url, environ={})
    tracker.track("api_calls", 1, "lic-tcp-3", idempotency_key="order-17")
    tracker.shutdown(timeout=10)
    assert stored(upstream.db)["lic-tcp-3"] == 1
    assert upstream.collector.stats()["duplicates"] == 2


def test_a_followed_file_is_sent_once_across_sighup_stop_and_restart(
    upstream: Upstream, tmp_path: Path
) -> None:
    path = tmp_path / "usage.ndjson"
    append(path, [line("file", n) for n in range(1000)])
    running = DaemonProcess(tmp_path, upstream.url, "--follow", str(path))
    try:
        running.start()
        wait_until(lambda: running.status()["accepted"] == 1000, 20, "the first lines")
        append(path, [line("file", n) for n in range(1000, 1500)])
        running.signal(signal.SIGHUP)
        append(path, [line("file", n) for n in range(1500, 2000)])
        wait_until(lambda: running.status()["accepted"] == 2000, 20, "the lines after SIGHUP")
        running.wait_drained()
        assert running.stop() == 0
        append(path, [line("file", n) for n in range(2000, 2500)])
        running.start()
        wait_until(lambda: running.status()["accepted"] >= 500, 20, "the lines after restart")
        running.wait_drained()
        assert running.status()["accepted"] == 500  # the new lines only: none read again
        assert running.stop() == 0
    finally:
        running.close()
    rows = stored(upstream.db)
    assert rows == {f"lic-file-{n}": 1 for n in range(2500)}
    # Never read again: nothing was sent twice, not even to be deduplicated.
    assert upstream.collector.stats()["duplicates"] == 0


def test_a_kill_while_following_re_reads_at_most_lines_that_keep_their_ids(
    upstream: Upstream, tmp_path: Path
) -> None:
    path = tmp_path / "usage.ndjson"
    append(path, [line("file", n) for n in range(30000)])
    running = DaemonProcess(tmp_path, upstream.url, "--follow", str(path))
    try:
        running.start()
        wait_until(lambda: running.status()["accepted"] > 3000, 20, "some lines")
        running.kill()
        running.start()
        wait_until(lambda: running.status()["accepted"] > 0, 20, "the lines after the kill")
        running.kill()
        running.start()
        running.wait_drained()
        wait_until(lambda: len(stored(upstream.db)) == 30000, 30, "every line")
        assert running.stop() == 0
    finally:
        running.close()
    rows = stored(upstream.db)
    assert len(rows) == 30000
    assert max(rows.values()) == 1


def test_a_rotated_or_truncated_file_is_read_to_its_end_then_anew(
    upstream: Upstream, tmp_path: Path
) -> None:
    path = tmp_path / "usage.ndjson"
    append(path, [line("first", n) for n in range(300)])
    running = DaemonProcess(tmp_path, upstream.url, "--follow", str(path))
    try:
        running.start()
        wait_until(lambda: running.status()["accepted"] == 300, 20, "the first file")
        # logrotate, create mode: the file is renamed (one more line lands in it), a new one
        # takes its place.
        os.rename(path, tmp_path / "usage.ndjson.1")
        append(tmp_path / "usage.ndjson.1", [line("first", 300)])
        append(path, [line("second", n) for n in range(200)])
        wait_until(lambda: running.status()["accepted"] == 501, 20, "the rotated file")
        # copytruncate: emptied in place, then written again, with the same first line.
        os.truncate(path, 0)
        append(path, [line("second", 0), *[line("third", n) for n in range(100)]])
        wait_until(lambda: running.status()["accepted"] == 602, 20, "the truncated file")
        running.wait_drained()
        assert running.stop() == 0
    finally:
        running.close()
    rows = stored(upstream.db)
    assert (sum(rows.values()), len(rows)) == (602, 601)  # "second 0": two lines, two events
    assert rows["lic-second-0"] == 2
    assert {name for name in rows if name.startswith("lic-third-")} == {
        f"lic-third-{n}" for n in range(100)
    }
    assert "shorter than where it was read to" in running.log

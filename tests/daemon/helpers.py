"""The daemon as a real process, the collector's store read back, and client processes."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
KEY = "dk_test_daemon_5f3a9c0000"
CLIENT_KEY = "dk_client_of_the_daemon"
CLIENT = Path(__file__).with_name("client.py")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class DaemonProcess:
    """``doow-serverless daemon`` as a subprocess, on a fixed port, restartable."""

    def __init__(
        self,
        workdir: Path,
        endpoint: str | None,
        *extra: str,
        key: str | None = KEY,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.port = free_port() if port is None else port
        self.url = f"http://127.0.0.1:{self.port}"
        self.spool = workdir / "spool"
        self.pidfile = workdir / "daemon.pid"
        self.log_path = workdir / "daemon.log"
        self.arguments = [
            sys.executable,
            "-m",
            "doow_serverless",
            "daemon",
            *(["--endpoint", endpoint] if endpoint else []),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--spool-dir",
            str(self.spool),
            "--pidfile",
            str(self.pidfile),
            *(["--api-key", key] if key else []),
            *extra,
        ]
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, *, ready: bool = True) -> DaemonProcess:
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            self.process = subprocess.Popen(
                self.arguments, stdout=log, stderr=log, env=self.env, cwd=self.workdir
            )
        if ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.status()
                return
            except OSError:
                if self.process is not None and self.process.poll() is not None:
                    raise AssertionError(f"the daemon exited at start:\n{self.log}") from None
                if time.monotonic() > deadline:
                    raise AssertionError(f"the daemon is not ready:\n{self.log}") from None
                time.sleep(0.05)

    def status(self) -> dict[str, Any]:
        status, _, document = request("GET", f"{self.url}/healthz")
        assert status == 200, document
        return dict(document)

    def wait_drained(self, timeout: float = 60.0) -> dict[str, Any]:
        """Until the daemon holds nothing (everything forwarded); its last status."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status["spool_files"] == 0 and status["held_in_memory"] == 0:
                return status
            assert time.monotonic() < deadline, f"not drained: {status}\n{self.log}"
            time.sleep(0.1)

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, and the exit status."""
        self.signal(signal.SIGTERM)
        assert self.process is not None
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def stored(db: Path) -> Counter[str]:
    """How many rows the collector stored for each license id (each event carries its own)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        rows = connection.execute("SELECT license_id FROM events").fetchall()
    return Counter(row[0] for row in rows)


def stored_ids(db: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        return {row[0] for row in connection.execute("SELECT event_id FROM events")}


def start_client(
    kind: str, endpoint: str, name: str, count: int, *extra: str
) -> subprocess.Popen[str]:
    """A client process (see client.py): ``ours`` (DoowTracker), ``official`` (doow-track
    0.1.2) or ``raw`` (batches posted one by one, recording which were acknowledged)."""
    return subprocess.Popen(
        [sys.executable, str(CLIENT), kind, endpoint, name, str(count), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def finish(clients: Sequence[subprocess.Popen[str]], timeout: float = 90.0) -> list[dict[str, Any]]:
    """Each client's report (the JSON it prints at the end)."""
    reports = []
    for client in clients:
        out, err = client.communicate(timeout=timeout)
        assert client.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def expected_licenses(name: str, count: int) -> set[str]:
    return {f"lic-{name}-{n}" for n in range(count)}


def post(
    url: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """One request; the status, the headers and the JSON answer."""
    return request("POST", url, body, {"Content-Type": "application/json", **(headers or {})})


def request(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request(method, parts.path, body, headers or {})
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), json.loads(answer.read() or b"null")
    finally:
        connection.close()


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextlib.contextmanager
def daemon(
    workdir: Path, endpoint: str | None, *extra: str, **options: Any
) -> Iterator[DaemonProcess]:
    running = DaemonProcess(workdir, endpoint, *extra, **options)
    try:
        yield running.start()
    finally:
        running.close()

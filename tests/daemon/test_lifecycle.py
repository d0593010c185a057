"""The daemon's life as a process manager sees it: the pidfile, a stop within the grace
period that keeps what it could not forward, the exit status, logs on stderr."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import Upstream
from .helpers import KEY, DaemonProcess, daemon, expected_licenses, finish, start_client, stored

# A process start (a Python interpreter, the imports) and exit on a shared 2-core machine.
PROCESS_TOLERANCE_S = 3.0


def test_a_live_daemons_pidfile_refuses_a_second_one_with_a_clear_error(
    upstream: Upstream, tmp_path: Path
) -> None:
    with daemon(tmp_path, upstream.url) as running:
        assert running.process is not None
        assert running.pidfile.read_text() == f"{running.process.pid}\n"
        second = DaemonProcess(tmp_path / "second", upstream.url)
        second.pidfile = running.pidfile
        second.arguments[second.arguments.index("--pidfile") + 1] = str(running.pidfile)
        (tmp_path / "second").mkdir()
        second.start(ready=False)
        assert second.process is not None
        assert second.process.wait(30) == 2
        assert f"another daemon (pid {running.process.pid}) is running" in second.log
        assert running.pidfile.read_text() == f"{running.process.pid}\n"  # untouched
        assert running.stop() == 0
    assert not running.pidfile.exists()  # removed at a clean stop


def test_a_stale_pidfile_is_taken_over(upstream: Upstream, tmp_path: Path) -> None:
    pidfile = tmp_path / "daemon.pid"
    pidfile.write_text(f"{os.getpid()}\n")  # a live pid, but nobody holds the file's lock
    running = DaemonProcess(tmp_path, upstream.url)
    try:
        running.start()
        assert running.process is not None
        assert pidfile.read_text() == f"{running.process.pid}\n"
        running.kill()  # SIGKILL: the pidfile stays, stale
        assert pidfile.exists()
        running.start()
        assert pidfile.read_text() == f"{running.process.pid}\n"
        assert running.stop() == 0
    finally:
        running.close()


def test_sigterm_with_upstream_down_stops_within_the_grace_period_and_keeps_the_rest(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.collector.set_faults({"then": {"action": "hang"}})
    running = DaemonProcess(tmp_path, upstream.url, "--grace", "2")
    try:
        running.start()
        finish([start_client("ours", running.url, "kept", 1000)])
        time.sleep(0.5)  # the forwarder is in a request that never ends
        started = time.monotonic()
        assert running.stop() == 0  # nothing lost: what is left is in the spool
        took = time.monotonic() - started
        assert took < 2 + PROCESS_TOLERANCE_S, took
        assert "batch file(s) kept in" in running.log
        upstream.collector.clear_faults()
        running.start()  # the next start forwards what the last one kept
        running.wait_drained()
        assert running.stop() == 0
    finally:
        running.close()
    rows = stored(upstream.db)
    assert set(rows) == expected_licenses("kept", 1000)
    assert max(rows.values()) == 1


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_forwards_what_is_held_within_the_grace_period(
    upstream: Upstream, tmp_path: Path, stop_with: int
) -> None:
    config = tmp_path / "doow-track.json"
    config.write_text(json.dumps({"flushAt": 100000, "flushInterval": 600000}))
    with daemon(tmp_path, upstream.url, "--config", str(config), "--grace", "20") as running:
        finish([start_client("ours", running.url, "held", 2000)])
        assert running.status()["held_in_memory"] == 2000  # waiting for flushAt or the interval
        running.signal(stop_with)
        assert running.process is not None
        assert running.process.wait(30) == 0
    assert set(stored(upstream.db)) == expected_licenses("held", 2000)
    assert not any((tmp_path / "spool").glob("*/*.json"))
    assert f"{signal.Signals(stop_with).name} received; stopping" in running.log
    assert KEY not in running.log


def test_the_command_is_documented_and_logs_go_to_stderr(
    upstream: Upstream, tmp_path: Path
) -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "doow_serverless", "daemon", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    for option in (
        "--config",
        "--pidfile",
        "--listen",
        "--socket",
        "--lines-port",
        "--follow",
        "--grace",
        "--allow-remote",
        "--token-file",
        "--spool-max-bytes",
    ):
        assert option in helped.stdout
    with daemon(tmp_path, upstream.url) as running:
        assert running.stop() == 0
    lines = running.log.splitlines()
    assert any(" INFO doow-serverless daemon: pid " in line for line in lines)

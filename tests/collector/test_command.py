"""The CLI glue: `collector` in the foreground (a real process) and `events`."""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from doow_serverless_dev.collector import Collector
from doow_serverless_dev.collector._command import (
    configure_collector_parser,
    configure_events_parser,
    format_table,
    run_collector,
    run_events,
)

from .helpers import INGEST, batch, body_of, event, metric_event, post


def _events_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_events_parser(parser)
    return parser.parse_args(argv)


def _collector_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_collector_parser(parser)
    return parser.parse_args(argv)


def test_collector_defaults() -> None:
    args = _collector_args()
    assert (args.host, args.port, args.db) == ("127.0.0.1", 8787, "doow-collector.sqlite3")
    assert (args.api_key, args.idle_timeout, args.reject_license) == (None, 5.0, [])
    repeated = _collector_args("--api-key", "dk_a", "--api-key", "dk_b", "--reject-license", "l")
    assert (repeated.api_key, repeated.reject_license) == (["dk_a", "dk_b"], ["l"])


@pytest.mark.parametrize("argv", [["--port", "70000"], ["--idle-timeout", "0"]])
def test_collector_options_are_checked(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _collector_args(*argv)
    assert "error" in capsys.readouterr().err


def test_events_lists_a_table(collector: Collector, capsys: pytest.CaptureFixture[str]) -> None:
    post(collector, batch([metric_event("tokens", 5, "lic_a"), metric_event("requests", 1)]))
    assert run_events(_events_args("--endpoint", collector.url)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("RECEIVED")
    assert lines[0].split()[1:] == ["METRIC", "LICENSE", "QUANTITY", "UNIT", "KIND", "EVENT", "ID"]
    assert lines[1].split()[1:4] == ["requests", "lic_test", "1"]
    assert lines[2].split()[1:4] == ["tokens", "lic_a", "5"]
    assert lines[3] == "2 event(s), newest first"


def test_events_filters_and_prints_json(
    collector: Collector, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    post(collector, batch([metric_event("tokens", 5, "lic_a"), metric_event("tokens", 6)]))
    monkeypatch.setenv("DOOW_TRACK_ENDPOINT", collector.url + "/")
    assert run_events(_events_args("--license-id", "lic_a", "--metric", "tokens", "--json")) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == collector.events(license_id="lic_a")
    assert [item["quantity"] for item in printed] == [5]


def test_events_without_a_collector_fails_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert run_events(_events_args("--endpoint", f"http://127.0.0.1:{port}")) == 1
    assert "no collector answering at http://127.0.0.1:" in capsys.readouterr().err


def test_events_reports_an_error_answer(
    collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_events(_events_args("--endpoint", f"{collector.url}/elsewhere")) == 1
    assert "answered 404: no such path: /elsewhere/events" in capsys.readouterr().err


def test_events_refuses_a_non_http_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_events(_events_args("--endpoint", "file:///etc/passwd")) == 2
    assert "not an http(s) URL" in capsys.readouterr().err


def test_the_table_never_shows_control_characters() -> None:
    table = format_table([{"metric": "a\x1b[31mred\nline", "event_id": "x" * 80}])
    assert "\x1b" not in table
    assert table.count("\n") == 2
    assert "x" * 39 + "…" in table
    assert format_table([]) == "No events received (yet)."


def test_a_port_in_use_is_reported(
    collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _collector_args("--port", str(collector.port), "--db", ":memory:")
    assert run_collector(args) == 1
    assert f"cannot listen on 127.0.0.1:{collector.port}" in capsys.readouterr().err


def test_a_bad_key_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    args = _collector_args("--port", "0", "--db", ":memory:", "--api-key", "sk_live")
    assert run_collector(args) == 2
    assert "must be a string starting with 'dk_'" in capsys.readouterr().err


def _read_lines(process: subprocess.Popen[str], count: int) -> list[str]:
    """The first lines the process prints, without waiting forever if it prints fewer."""
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for _ in range(count):
            lines.put(stdout.readline())

    threading.Thread(target=read, daemon=True).start()
    return [lines.get(timeout=15) for _ in range(count)]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_collector_runs_in_the_foreground_until_signalled(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    db = tmp_path / "collector.sqlite3"
    env = {**os.environ, "DOOW_COLLECTOR_API_KEYS": " dk_first , dk_second,"}
    command = [
        sys.executable,
        "-m",
        "doow_serverless_dev.collector",
        "--port",
        "0",
        "--db",
        str(db),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path
    )
    try:
        banner = _read_lines(process, 6)
        assert banner[0].startswith("Doow collector listening on http://127.0.0.1:")
        url = banner[0].split()[-1]
        assert banner[1].strip() == f"events stored: {db}"
        assert banner[2].strip() == "API keys:      2 configured key(s)"
        document = body_of(batch([event()]))
        with httpx.Client(base_url=url) as session:
            accepted = session.post(
                INGEST, content=document, headers={"Authorization": "Bearer dk_second"}
            )
            refused = session.post(
                INGEST, content=document, headers={"Authorization": "Bearer dk_third"}
            )
        assert (accepted.status_code, refused.status_code) == (202, 401)
        started = time.monotonic()
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert time.monotonic() - started < 5
    assert out.strip().endswith("doow-serverless collector: stopped")
    assert "POST /telemetry/events 202 accepted=1 rejected=0 duplicates=0" in err
    assert "dk_second" not in err and "Traceback" not in err
    with Collector(db_path=db) as reopened:
        assert reopened.stats()["events_stored"] == 1

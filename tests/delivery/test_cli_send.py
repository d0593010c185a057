"""`doow-serverless send`: pipe mode, run as the real command against the collector."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from doow_serverless_dev.collector import Collector

from .conftest import KEY


def send(
    collector: Collector, lines: list[str], *extra: str, key: str = KEY
) -> subprocess.CompletedProcess[str]:
    arguments = ["--api-key", key, "--endpoint", collector.url, "--timeout", "10", *extra]
    return run_send(lines, *arguments)


def run_send(lines: list[str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "doow_serverless", "send", *arguments],
        input="".join(line + "\n" for line in lines),
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )


GOOD = [
    '{"metric": "api_calls", "quantity": 1, "license_id": "lic_abc"}',
    '{"metric": "tokens", "quantity": 512, "license_id": "lic_abc", "attribution": {"m": "x"}}',
]


def test_lines_are_delivered_and_the_exit_status_is_zero(collector: Collector) -> None:
    completed = send(collector, GOOD)
    assert completed.returncode == 0, completed.stderr
    assert "2 delivered" in completed.stderr
    assert collector.stats()["events_stored"] == 2
    assert KEY not in completed.stdout + completed.stderr


def test_malformed_lines_are_reported_by_number_and_skipped(collector: Collector) -> None:
    lines = [
        GOOD[0],
        "{not json",
        '{"metric": "api_calls", "quantity": 0, "license_id": "lic_abc"}',
        '{"metric": "api_calls", "license_id": "lic_abc"}',
        '{"metric": "m", "quantity": 1, "license_id": "l", "colour": "red"}',
        "[1, 2]",
        GOOD[1],
    ]
    completed = send(collector, lines)
    assert completed.returncode == 1
    errors = completed.stderr
    assert "line 2: malformed JSON" in errors
    assert "line 3: quantity: must be greater than 0" in errors
    assert "line 4: missing quantity" in errors
    assert "line 5: unknown field(s) 'colour'" in errors
    assert "line 6: must be a JSON object" in errors
    assert collector.stats()["events_stored"] == 2  # the good lines, nothing else lost


def test_undelivered_events_make_the_exit_status_non_zero(collector: Collector) -> None:
    collector.set_faults({"then": {"status": 503}})
    completed = send(collector, GOOD, "--timeout", "1")
    assert completed.returncode == 1
    assert "2 not delivered" in completed.stderr


def test_an_idempotency_prefix_makes_a_rerun_count_nothing_twice(collector: Collector) -> None:
    for _ in range(2):
        assert send(collector, GOOD, "--idempotency-prefix", "usage-2026-11-22").returncode == 0
    stats = collector.stats()
    assert (stats["events_stored"], stats["duplicates"]) == (2, 2)


def test_the_config_file_is_read_and_flags_beat_it(collector: Collector, tmp_path: Path) -> None:
    config = tmp_path / "doow-track.json"
    config.write_text(
        json.dumps(
            {
                "apiKey": KEY,
                "endpoint": "https://unused.example.com",
                "flushAt": 5,
                "flushInterval": 1000,
                "attribution": {"service": "billing-worker"},
            }
        )
    )
    completed = run_send(GOOD[:1], "--config", str(config), "--endpoint", collector.url)
    assert completed.returncode == 0, completed.stderr
    [stored] = collector.events()
    assert stored["attribution"] == {"service": "billing-worker"}


def test_a_bad_config_file_is_a_clear_error(collector: Collector, tmp_path: Path) -> None:
    config = tmp_path / "doow-track.json"
    config.write_text('{"apiKey": "dk_x", "flushEvery": 5}')
    completed = send(collector, GOOD, "--config", str(config))
    assert completed.returncode == 2
    assert "unknown key(s) 'flushEvery'" in completed.stderr
    config.write_text('{"apiKey": "dk_x", "api_key": "dk_y"}')
    completed = send(collector, GOOD, "--config", str(config))
    assert completed.returncode == 2
    assert "gives 'api_key' twice" in completed.stderr
    assert "dk_y" not in completed.stderr


def test_the_snake_case_keys_the_node_cli_reads_are_read_too(
    collector: Collector, tmp_path: Path
) -> None:
    config = tmp_path / "doow-track.json"
    config.write_text(
        json.dumps(
            {
                "api_key": KEY,
                "endpoint": collector.url,
                "flush_at": 5,
                "flush_interval": 1000,
                "attribution": {"service": "billing-worker"},
            }
        )
    )
    completed = run_send(GOOD[:1], "--config", str(config))
    assert completed.returncode == 0, completed.stderr
    [stored] = collector.events()
    assert stored["attribution"] == {"service": "billing-worker"}

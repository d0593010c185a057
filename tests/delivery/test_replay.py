"""`doow-serverless replay`: what a killed process left in a spool or in its log lines is
sent again, as the real command, with the same ids, once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from doow_serverless._durability.lines import unsent_lines
from doow_serverless_dev.collector import Collector

from .conftest import KEY
from .test_spool import (
    CHILD_WAIT_S,
    child_tracker,
    flushed,
    hanging,
    key_ids,
    killed_after_a_failed_flush,
    spooled,
    spooled_ids,
    stored_ids,
    wait_for,
    write_batch,
)

REQUEST_ID = "8f3c2b1a-6d4e-4f5a-9b8c-7d6e5f4a3b2c"
SUMMARY_FIELDS = ["found", "unique", "invalid", "delivered", "rejected", "unsent", "answered"]


def replay(
    collector: Collector, *sources: str, key: str = KEY, timeout: float = 10.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "doow_serverless",
            "replay",
            *sources,
            "--endpoint",
            collector.url,
            "--api-key",
            key,
            "--timeout",
            str(timeout),
        ],
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )


def summary(completed: subprocess.CompletedProcess[str]) -> list[int]:
    """The --json summary, as the values of SUMMARY_FIELDS in order."""
    document: dict[str, int] = json.loads(completed.stdout.splitlines()[-1])
    assert sorted(document) == sorted(SUMMARY_FIELDS)
    return [document[name] for name in SUMMARY_FIELDS]


def cloudwatch(line: str) -> str:
    return f"2026-11-23T00:00:00.000Z\t{REQUEST_ID}\tINFO\t{line}"


def logged_by_a_child(collector: Collector, spool: Path, **options: Any) -> list[str]:
    """The unsent-event lines a child with the spool off printed after failed flushes."""
    collector.set_faults({"then": {"status": 503}})
    printed: list[str] = []
    with child_tracker(spool, collector, **options) as child:
        flushed(child, printed)
    collector.clear_faults()
    return [line for line in printed if "doow_unsent" in line]


@pytest.fixture
def sources(collector: Collector, tmp_path: Path) -> tuple[Path, Path]:
    """A spool left by a killed child (ev-0..ev-4) and a log with ev-3..ev-7 in two lines:
    one CloudWatch-style with a prefix, one wrapped in a JSON export record."""
    spool = tmp_path / "spool"
    killed_after_a_failed_flush(spool, collector, count=5)
    first, second = logged_by_a_child(
        collector, Path("off"), count=5, start=3, group=3, prefix="ev"
    )
    log = tmp_path / "function.log"
    log.write_text(
        "\n".join(
            [
                f"START RequestId: {REQUEST_ID} Version: $LATEST",
                cloudwatch(first),
                cloudwatch('{"level": "info", "message": "unrelated"}'),
                json.dumps({"message": second, "logStream": "2026/11/23/[$LATEST]abc"}),
                f"END RequestId: {REQUEST_ID}",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    assert collector.stats()["events_stored"] == 0
    return spool, log


def tree(*roots: Path) -> dict[str, bytes]:
    """Every file under ``roots`` (or the file itself) with its bytes."""
    files: dict[str, bytes] = {}
    for root in roots:
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.is_file():
                files[str(path)] = path.read_bytes()
    return files


def test_replay_sends_each_event_of_a_spool_and_a_log_once(
    collector: Collector, sources: tuple[Path, Path]
) -> None:
    spool, log = sources
    completed = replay(collector, "--spool", str(spool), "--log", str(log), "--json")
    assert completed.returncode == 0, completed.stderr
    assert summary(completed) == [10, 8, 0, 8, 0, 0, 0]
    assert sorted(stored_ids(collector)) == sorted(key_ids("ev", 8))
    assert (collector.stats()["events_stored"], collector.stats()["duplicates"]) == (8, 0)
    assert spooled(spool) == []  # delivered: the files are gone
    assert KEY not in completed.stdout + completed.stderr


def test_replaying_twice_stores_nothing_new(
    collector: Collector, sources: tuple[Path, Path]
) -> None:
    spool, log = sources
    assert replay(collector, "--spool", str(spool), "--log", str(log)).returncode == 0
    again = replay(collector, "--spool", str(spool), "--log", str(log), "--json")
    assert again.returncode == 0, again.stderr
    assert summary(again) == [5, 5, 0, 5, 0, 0, 0]  # the log still holds its lines
    stats = collector.stats()
    assert (stats["events_stored"], stats["duplicates"]) == (8, 5)


def test_replay_against_a_failing_endpoint_exits_1_and_keeps_the_spool(
    collector: Collector, sources: tuple[Path, Path]
) -> None:
    spool, log = sources
    collector.set_faults({"then": {"status": 503}})
    failed = replay(
        collector, "--spool", str(spool), "--log", str(log), "--json", "--debug", timeout=1.0
    )
    assert failed.returncode == 1
    assert summary(failed) == [10, 8, 0, 0, 0, 8, 0]
    assert sorted(spooled_ids(spool)) == sorted(key_ids("ev", 5))
    assert KEY not in failed.stdout + failed.stderr

    collector.clear_faults()
    retried = replay(collector, "--spool", str(spool), "--json")
    assert retried.returncode == 0, retried.stderr
    assert summary(retried) == [5, 5, 0, 5, 0, 0, 0]
    assert spooled(spool) == []


def test_replay_without_sources_exits_2(collector: Collector) -> None:
    completed = replay(collector)
    assert completed.returncode == 2
    assert "--spool" in completed.stderr
    assert collector.stats()["http_requests"] == 0


def test_a_dry_run_sends_nothing_and_changes_no_file(
    collector: Collector, sources: tuple[Path, Path]
) -> None:
    spool, log = sources
    before = tree(spool, log)
    requests = collector.stats()["http_requests"]  # the children's
    completed = replay(collector, "--spool", str(spool), "--log", str(log), "--json", "--dry-run")
    assert completed.returncode == 0, completed.stderr
    assert summary(completed) == [10, 8, 0, 0, 0, 8, 0]
    assert tree(spool, log) == before
    assert collector.stats()["http_requests"] == requests


def document(event_id: str, quantity: float = 1) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "license_id": "lic_1",
        "occurred_at": "2026-11-23T00:00:00Z",
        "source_system": "sdk",
        "kind": "USAGE",
        "measurements": [{"metric_name": "api_calls", "quantity": quantity}],
    }


def test_an_invalid_event_in_a_log_is_counted_reported_and_the_rest_sent(
    collector: Collector, tmp_path: Path
) -> None:
    good = [str(uuid.uuid4()) for _ in range(2)]
    events = [document(good[0]), document(str(uuid.uuid4()), quantity=-1), document(good[1])]
    log = tmp_path / "function.log"
    log.write_text(
        "".join(cloudwatch(line) + "\n" for line in unsent_lines(str(uuid.uuid4()), events, "x"))
    )
    completed = replay(collector, "--log", str(log), "--json")
    assert summary(completed) == [3, 2, 1, 2, 0, 0, 0]
    assert "skipped" in completed.stderr
    assert completed.returncode == 1  # something could not be read
    assert sorted(stored_ids(collector)) == sorted(good)


def test_events_refused_by_the_server_are_counted_as_rejected(
    collector: Collector, tmp_path: Path
) -> None:
    collector.set_faults({"script": [{"status": 207, "reject": 1}]})
    log = tmp_path / "function.log"
    ids = [str(uuid.uuid4()) for _ in range(3)]
    log.write_text(
        "".join(line + "\n" for line in unsent_lines("b", [document(i) for i in ids], "x"))
    )
    completed = replay(collector, "--log", str(log), "--json")
    assert summary(completed) == [3, 3, 0, 2, 1, 0, 0]
    assert collector.stats()["events_stored"] == 2
    assert completed.returncode == 1  # not everything was delivered, as with `send`


def test_a_spool_left_by_a_child_killed_mid_send_is_replayed(
    collector: Collector, tmp_path: Path
) -> None:
    collector.set_faults({"then": {"action": "hang"}})
    with child_tracker(tmp_path, collector, count=4, flush_timeout=30) as child:
        assert wait_for(lambda: hanging(collector) >= 1)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=CHILD_WAIT_S)
    collector.clear_faults()
    completed = replay(collector, "--spool", str(tmp_path), "--json")
    assert completed.returncode == 0, completed.stderr
    assert summary(completed) == [4, 4, 0, 4, 0, 0, 0]
    assert sorted(stored_ids(collector)) == sorted(key_ids("ev", 4))


def test_a_corrupt_spool_file_does_not_stop_a_replay(collector: Collector, tmp_path: Path) -> None:
    owner = tmp_path / "99-dead"
    owner.mkdir()
    good = [str(uuid.uuid4()) for _ in range(2)]
    write_batch(owner, good)
    (owner / "broken.json").write_bytes(b'{"batch_id": "')
    completed = replay(collector, "--spool", str(tmp_path), "--json")
    assert completed.returncode == 1, completed.stderr  # something could not be read
    assert summary(completed) == [2, 2, 1, 2, 0, 0, 0]
    assert (tmp_path / "broken.bad").exists()
    assert "set aside" in completed.stderr
    assert spooled(tmp_path) == []


def test_replay_leaves_a_live_processes_batches_to_it(collector: Collector, tmp_path: Path) -> None:
    collector.set_faults({"then": {"status": 503}})
    with child_tracker(tmp_path, collector, count=3) as child:
        assert flushed(child)["pending"] == 3
        collector.clear_faults()
        completed = replay(collector, "--spool", str(tmp_path), "--json")
        assert completed.returncode == 0, completed.stderr
        assert summary(completed) == [0, 0, 0, 0, 0, 0, 0]
        assert sorted(spooled_ids(tmp_path)) == sorted(key_ids("ev", 3))
    assert collector.stats()["events_stored"] == 0


def test_replay_of_a_missing_spool_directory_exits_2_and_creates_nothing(
    collector: Collector, tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such-spool"
    completed = replay(collector, "--spool", str(missing), "--json")
    assert completed.returncode == 2
    assert "does not exist" in completed.stderr
    assert not missing.exists()

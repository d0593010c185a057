"""The spool and the log fallback: what a flush could not deliver survives the process.

Kills are real: a child Python process is SIGKILLed (or leaves with ``os._exit``) while
the collector on 127.0.0.1 fails or hangs, and a later tracker with the same spool
directory must send exactly what the dead one had, once.
"""

from __future__ import annotations

import fcntl
import json
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from doow_serverless import DoowConfigError, DoowDeliveryError, DoowTracker, TrackerStats
from doow_serverless._core.wire import encode_batch, event_id_from_seed
from doow_serverless._durability.lines import read_unsent
from doow_serverless_dev.collector import Collector

from .conftest import KEY, MakeTracker, Reported, track_many

# A child process: one Lambda-like tracker on the given spool directory ("off": none). It
# tracks `count` events with idempotency keys `{prefix}-{n}` (n from `start`), flushing
# after every `group` of them, prints its last flush result as JSON and waits for its stdin
# to close (the parent kills it first when the test is about a kill).
CHILD = r"""
import json, os, sys, threading, time
from pathlib import Path
from doow_serverless import DoowTracker

options = json.loads(sys.argv[1])
environ = {"AWS_LAMBDA_FUNCTION_NAME": "child", "DOOW_TRACK_SPOOL_DIR": options["spool"]}
tracker = DoowTracker(
    options["key"], endpoint=options["endpoint"], environ=environ,
    retry_count=options["retry_count"],
)
if options["exit_when_spooled"]:
    def spooled():
        try:
            return any(Path(options["spool"]).glob("*/*.json"))
        except OSError:  # a directory renamed while listed (the spool claiming its own)
            return False
    def exit_when_spooled():
        while not spooled():
            time.sleep(0.005)
        os._exit(3)  # mid-flush: no shutdown, no atexit, like a kill
    threading.Thread(target=exit_when_spooled, daemon=True).start()
numbers = range(options["start"], options["start"] + options["count"])
for index, n in enumerate(numbers, start=1):
    tracker.track("api_calls", 1, "lic_1", idempotency_key=f"{options['prefix']}-{n}")
    if index % options["group"] == 0 or index == len(numbers):
        result = tracker.flush(timeout=options["flush_timeout"])
print(json.dumps({"flushed": {"pending": result.pending}}), flush=True)
sys.stdin.read()
os._exit(0)
"""

CHILD_WAIT_S = 30.0


def lambda_environ(spool: Path | str, **more: str) -> dict[str, str]:
    return {"AWS_LAMBDA_FUNCTION_NAME": "test", "DOOW_TRACK_SPOOL_DIR": str(spool), **more}


def key_ids(prefix: str, count: int, start: int = 0) -> list[str]:
    """The event ids the child derives from its idempotency keys."""
    return [event_id_from_seed(f"key:{prefix}-{n}") for n in range(start, start + count)]


def spooled(base: Path) -> list[Path]:
    """Batch files in every owner directory under ``base`` (read while a child may be
    renaming its directory or files: what vanishes meanwhile is not counted)."""
    while True:
        try:
            return sorted(path for path in base.glob("*/*.json") if path.exists())
        except FileNotFoundError:
            continue


def spooled_ids(base: Path) -> list[str]:
    ids = []
    for path in spooled(base):
        try:
            ids += [event["event_id"] for event in json.loads(path.read_bytes())["events"]]
        except FileNotFoundError:
            continue
    return ids


def stored_ids(collector: Collector) -> list[str]:
    """Stored event ids, oldest first."""
    return [event["event_id"] for event in reversed(collector.events(limit=1000))]


def balanced(stats: TrackerStats) -> bool:
    return stats.tracked + stats.recovered == (
        stats.delivered + stats.rejected + stats.dropped + stats.persisted + stats.pending
    )


def hanging(collector: Collector) -> int:
    return int(collector.stats()["requests_by_status"].get("hang", 0))


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def unsent_documents(text: str) -> list[dict[str, Any]]:
    documents = list(read_unsent(text.splitlines()))
    assert all(isinstance(document, dict) for document in documents)
    return documents  # type: ignore[return-value]


@contextmanager
def child_tracker(
    spool: Path,
    collector: Collector,
    *,
    count: int,
    prefix: str = "ev",
    start: int = 0,
    group: int | None = None,
    flush_timeout: float = 2.0,
    retry_count: int = 0,
    exit_when_spooled: bool = False,
) -> Iterator[subprocess.Popen[str]]:
    """A child process tracking ``count`` events into ``spool``; killed when the block ends."""
    options = {
        "spool": str(spool),
        "endpoint": collector.url,
        "key": KEY,
        "count": count,
        "prefix": prefix,
        "start": start,
        "group": group or count,
        "flush_timeout": flush_timeout,
        "retry_count": retry_count,
        "exit_when_spooled": exit_when_spooled,
    }
    with running_child(CHILD, options) as child:
        yield child


@contextmanager
def running_child(script: str, options: dict[str, Any]) -> Iterator[subprocess.Popen[str]]:
    """``python -c script options-as-JSON``, with pipes; SIGKILLed when the block ends."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, json.dumps(options)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield child
    finally:
        kill(child)


def kill(child: subprocess.Popen[str]) -> None:
    if child.poll() is None:
        os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=CHILD_WAIT_S)
    for stream in (child.stdin, child.stdout, child.stderr):
        if stream is not None:
            stream.close()


def flushed(child: subprocess.Popen[str], printed: list[str] | None = None) -> dict[str, Any]:
    """The child's last flush result (it then waits to be killed); the lines it printed
    before are added to ``printed``."""
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith('{"flushed"'):
            result: dict[str, Any] = json.loads(line)["flushed"]
            return result
        if printed is not None:
            printed.append(line.rstrip("\n"))
    raise AssertionError("the child died before it flushed")


def killed_after_a_failed_flush(spool: Path, collector: Collector, count: int) -> None:
    """A child whose flush failed (503) is SIGKILLed; its batches stay in ``spool``."""
    collector.set_faults({"then": {"status": 503}})
    with child_tracker(spool, collector, count=count) as child:
        assert flushed(child)["pending"] == count
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=CHILD_WAIT_S)
    collector.clear_faults()


# -- 1. write-ahead -----------------------------------------------------------------------


def test_every_batch_is_on_disk_while_the_first_is_being_sent(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    collector.set_faults({"then": {"action": "hang"}})
    tracker = make_tracker(environ=lambda_environ(tmp_path), timeout=10.0)
    track_many(tracker, 501)  # two batches: 500 and 1
    during: list[list[str]] = []

    def look_then_release() -> None:
        if wait_for(lambda: hanging(collector) >= 1):
            during.append(spooled_ids(tmp_path))
        collector.clear_faults()  # the hanging request is dropped; the retry is accepted

    looker = threading.Thread(target=look_then_release)
    looker.start()
    result = tracker.flush(timeout=20)
    looker.join()
    assert result.delivered == 501
    assert len(during) == 1
    assert len(during[0]) == 501
    assert sorted(during[0]) == sorted(stored_ids(collector))


def test_a_delivered_batch_leaves_no_file(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    collector.set_faults({"script": [{"status": 503}]})
    tracker = make_tracker(environ=lambda_environ(tmp_path), retry_count=0)
    track_many(tracker, 3)
    assert tracker.flush(timeout=5).pending == 3
    assert len(spooled(tmp_path)) == 1
    assert tracker.flush(timeout=5).delivered == 3
    assert spooled(tmp_path) == []


# -- 2. kill-safety across processes --------------------------------------------------------


def test_events_of_a_killed_process_are_sent_first_by_the_next_tracker(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    killed_after_a_failed_flush(tmp_path, collector, count=5)
    assert sorted(spooled_ids(tmp_path)) == sorted(key_ids("ev", 5))

    tracker = make_tracker(environ=lambda_environ(tmp_path))
    tracker.prepare()
    assert (tracker.stats().recovered, tracker.stats().pending) == (5, 5)
    tracker.track("api_calls", 1, "lic_1", idempotency_key="new-0")
    result = tracker.flush(timeout=10)
    assert (result.delivered, result.pending) == (6, 0)
    stored = stored_ids(collector)
    assert sorted(stored[:5]) == sorted(key_ids("ev", 5))  # the dead process's first
    assert stored[5:] == key_ids("new", 1)
    assert (collector.stats()["events_stored"], collector.stats()["duplicates"]) == (6, 0)
    assert tracker.stats().recovered == 5
    assert balanced(tracker.stats())
    assert spooled(tmp_path) == []


def test_the_first_flush_adopts_without_prepare(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    killed_after_a_failed_flush(tmp_path, collector, count=4)
    tracker = make_tracker(environ=lambda_environ(tmp_path))
    result = tracker.flush(timeout=10)
    assert (result.delivered, result.pending) == (4, 0)
    assert sorted(stored_ids(collector)) == sorted(key_ids("ev", 4))
    assert tracker.stats().recovered == 4


def test_a_process_that_exits_mid_flush_loses_nothing(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    collector.set_faults({"then": {"action": "hang"}})
    with child_tracker(
        tmp_path, collector, count=6, flush_timeout=30, exit_when_spooled=True
    ) as child:
        assert child.wait(timeout=CHILD_WAIT_S) == 3  # left through os._exit, mid-flush
    collector.clear_faults()
    tracker = make_tracker(environ=lambda_environ(tmp_path))
    assert tracker.flush(timeout=10).delivered == 6
    assert sorted(stored_ids(collector)) == sorted(key_ids("ev", 6))
    assert tracker.stats().recovered == 6


def test_a_kill_while_the_request_hangs_loses_nothing_and_doubles_nothing(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    collector.set_faults({"then": {"action": "hang"}})
    with child_tracker(tmp_path, collector, count=5, flush_timeout=30) as child:
        assert wait_for(lambda: hanging(collector) >= 1)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=CHILD_WAIT_S) == -signal.SIGKILL
    collector.clear_faults()
    tracker = make_tracker(environ=lambda_environ(tmp_path))
    assert tracker.flush(timeout=10).delivered == 5
    stats = collector.stats()
    assert (stats["events_stored"], stats["duplicates"]) == (5, 0)
    assert sorted(stored_ids(collector)) == sorted(key_ids("ev", 5))


def test_a_batch_stored_but_unanswered_before_a_kill_is_not_stored_twice(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    # Stored, then the connection is reset (the answer is lost); the retry hangs; kill.
    collector.set_faults(
        {"script": [{"action": "reset", "after_store": True}], "then": {"action": "hang"}}
    )
    with child_tracker(tmp_path, collector, count=5, flush_timeout=30, retry_count=1) as child:
        assert wait_for(lambda: hanging(collector) >= 1)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=CHILD_WAIT_S)
    assert collector.stats()["events_stored"] == 5
    collector.clear_faults()
    tracker = make_tracker(environ=lambda_environ(tmp_path))
    result = tracker.flush(timeout=10)
    assert (result.delivered, result.pending) == (5, 0)
    stats = collector.stats()
    assert (stats["events_stored"], stats["duplicates"]) == (5, 5)
    assert spooled(tmp_path) == []


def test_a_503_after_storing_then_a_kill_is_deduplicated_on_resend(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    collector.set_faults({"then": {"status": 503, "after_store": True}})
    with child_tracker(tmp_path, collector, count=3) as child:
        assert flushed(child)["pending"] == 3
    collector.clear_faults()
    tracker = make_tracker(environ=lambda_environ(tmp_path))
    assert tracker.flush(timeout=10).delivered == 3
    stats = collector.stats()
    assert (stats["events_stored"], stats["duplicates"]) == (3, 3)


# -- 3. a live owner's directory ------------------------------------------------------------


def test_a_live_process_keeps_its_spool_and_it_is_adopted_once_it_is_gone(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    collector.set_faults({"then": {"status": 503}})
    with child_tracker(tmp_path, collector, count=4) as child:
        assert flushed(child)["pending"] == 4
        collector.clear_faults()
        while_alive = make_tracker(environ=lambda_environ(tmp_path))
        while_alive.prepare()
        assert while_alive.stats().recovered == 0
        assert sorted(spooled_ids(tmp_path)) == sorted(key_ids("ev", 4))
    # the block killed it
    after = make_tracker(environ=lambda_environ(tmp_path))
    after.prepare()
    assert after.stats().recovered == 4
    assert after.flush(timeout=10).delivered == 4
    assert collector.stats()["events_stored"] == 4


# -- 4. the size bound -----------------------------------------------------------------------


def test_beyond_the_spool_bound_batches_are_only_logged_and_each_batch_is_logged_once(
    collector: Collector,
    make_tracker: MakeTracker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    collector.set_faults({"then": {"status": 503}})
    tracker = make_tracker(environ=lambda_environ(tmp_path), spool_max_bytes=1_000, retry_count=0)
    first = str(uuid.uuid4())
    tracker.track("api_calls", 1, "lic_1", event_id=first)  # ~300 bytes: fits
    tracker.flush(timeout=5)
    later = [str(uuid.uuid4()) for _ in range(10)]  # ~2,500 bytes: does not
    for event_id in later:
        tracker.track("api_calls", 1, "lic_1", event_id=event_id)
    for _ in range(3):
        assert tracker.flush(timeout=5).pending == 11
    assert spooled_ids(tmp_path) == [first]
    out = capsys.readouterr().out
    # Every undelivered batch is logged once, spooled or not: /tmp goes with the sandbox.
    assert [document["event_id"] for document in unsent_documents(out)] == [first, *later]
    assert out.count('"doow_unsent"') == 2

    collector.clear_faults()
    assert tracker.flush(timeout=10).delivered == 11
    assert spooled(tmp_path) == []
    assert unsent_documents(capsys.readouterr().out) == []


# -- 5. the log fallback ---------------------------------------------------------------------


SECRET = "dk_live_SECRET_spool_test_4d2c1b"


def test_with_the_spool_off_a_failed_flush_logs_every_event_and_never_the_key(
    collector: Collector,
    make_tracker: MakeTracker,
    reported: Reported,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    collector.set_faults({"then": {"status": 503, "message": f"no, {SECRET}"}})
    ids = [str(uuid.uuid4()) for _ in range(7)]
    with caplog.at_level(logging.DEBUG, logger="doow_serverless"):
        tracker = make_tracker(
            api_key=SECRET, environ=lambda_environ("off"), retry_count=0, debug=True
        )
        for event_id in ids:
            tracker.track("api_calls", 1, "lic_1", event_id=event_id)
        assert tracker.flush(timeout=5).pending == 7
    captured = capsys.readouterr()
    assert [document["event_id"] for document in unsent_documents(captured.out)] == ids
    everything = captured.out + captured.err + caplog.text + " ".join(map(str, reported))
    assert SECRET not in everything
    assert reported  # the failure was reported, so the redaction was exercised


@pytest.mark.parametrize(
    ("option", "environ"),
    [({"log_unsent": False}, {}), ({}, {"DOOW_TRACK_LOG_UNSENT": "false"})],
    ids=["argument", "environment"],
)
def test_with_log_lines_off_nothing_is_printed(
    collector: Collector,
    make_tracker: MakeTracker,
    capsys: pytest.CaptureFixture[str],
    option: dict[str, Any],
    environ: dict[str, str],
) -> None:
    collector.set_faults({"then": {"status": 503}})
    tracker = make_tracker(environ=lambda_environ("off", **environ), retry_count=0, **option)
    track_many(tracker, 3)
    assert tracker.flush(timeout=5).pending == 3
    assert "doow_unsent" not in capsys.readouterr().out


# -- 6. shutdown -----------------------------------------------------------------------------


def test_shutdown_of_a_long_running_process_hands_the_events_over_to_a_spool_of_the_user(
    collector: Collector,
    make_tracker: MakeTracker,
    reported: Reported,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    collector.set_faults({"then": {"status": 503}})
    state = tmp_path / "state"
    tracker = make_tracker(
        environ={"XDG_STATE_HOME": str(state)}, retry_count=0, flush_interval=60.0
    )
    ids = [str(uuid.uuid4()) for _ in range(4)]
    for event_id in ids:
        tracker.track("api_calls", 1, "lic_1", event_id=event_id)
    tracker.shutdown(timeout=2)
    stats = tracker.stats()
    assert (stats.persisted, stats.pending, stats.dropped) == (4, 0, 0)
    assert balanced(stats)
    # Nothing on stdout (it may be the program's own output), the events in the spool.
    assert "doow_unsent" not in capsys.readouterr().out
    spool_dir = state / "doow-serverless" / "doow-spool"
    assert sorted(spooled_ids(spool_dir)) == sorted(ids)
    # One warning: the count, and the command that sends them.
    [warning] = [str(error) for error in reported if "before shutdown" in str(error)]
    assert "4 event(s)" in warning
    assert f"doow-serverless replay --spool {spool_dir}" in warning


def test_shutdown_with_a_spool_hands_the_events_to_the_next_process(
    collector: Collector,
    make_tracker: MakeTracker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    collector.set_faults({"then": {"status": 503}})
    tracker = make_tracker(environ={}, spool=tmp_path, retry_count=0, flush_interval=60.0)
    track_many(tracker, 4)
    tracker.shutdown(timeout=2)
    stats = tracker.stats()
    assert (stats.persisted, stats.pending) == (4, 0)
    kept = spooled_ids(tmp_path)
    assert len(kept) == 4
    assert "doow_unsent" not in capsys.readouterr().out

    collector.clear_faults()
    after = make_tracker(environ={}, spool=tmp_path, flush_interval=60.0)
    after.prepare()
    assert after.stats().recovered == 4
    assert after.flush(timeout=10).delivered == 4
    assert sorted(stored_ids(collector)) == sorted(kept)


def test_shutdown_with_nowhere_to_keep_the_events_drops_and_reports_them(
    collector: Collector,
    make_tracker: MakeTracker,
    reported: Reported,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    collector.set_faults({"then": {"status": 503}})
    nowhere = tmp_path / "a-file"
    nowhere.write_text("not a directory\n")
    tracker = make_tracker(
        environ={"XDG_STATE_HOME": str(nowhere)},
        log_unsent=False,
        retry_count=0,
        flush_interval=60.0,
    )
    track_many(tracker, 3)
    with caplog.at_level(logging.ERROR, logger="doow_serverless"):
        tracker.shutdown(timeout=2)
    stats = tracker.stats()
    assert (stats.dropped, stats.persisted, stats.pending) == (3, 0, 0)
    assert balanced(stats)
    lost = [e for e in reported if isinstance(e, DoowDeliveryError) and "could not be" in str(e)]
    assert len(lost) == 1
    assert any(record.levelno == logging.ERROR for record in caplog.records)
    assert "doow_unsent" not in capsys.readouterr().out


# -- 7. the stats always add up -------------------------------------------------------------


@pytest.mark.parametrize(
    "plan",
    [
        {"script": [{"status": 503}]},
        {"script": [{"status": 207, "reject": 2}]},
        {"script": [{"status": 413}, {"status": 413}]},
        {"script": [{"status": 413}, {"status": 503}]},
        {"script": [{"status": 400}]},
    ],
    ids=["503", "207", "413-twice", "413-then-503", "400"],
)
def test_stats_add_up_after_each_flush_outcome(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path, plan: dict[str, Any]
) -> None:
    collector.set_faults(plan)
    tracker = make_tracker(environ=lambda_environ(tmp_path), retry_count=0)
    track_many(tracker, 8)
    tracker.flush(timeout=5)
    assert balanced(tracker.stats()), tracker.stats()
    tracker.flush(timeout=5)
    stats = tracker.stats()
    assert balanced(stats), stats
    assert stats.pending == 0
    assert stats.delivered + stats.rejected == 8
    assert collector.stats()["events_stored"] == stats.delivered
    assert spooled(tmp_path) == []


def test_stats_add_up_when_the_queue_is_full(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    tracker = make_tracker(environ=lambda_environ(tmp_path), max_queue_size=3)
    track_many(tracker, 5)
    stats = tracker.stats()
    assert (stats.tracked, stats.dropped, stats.pending) == (5, 2, 3)
    assert balanced(stats)
    tracker.flush(timeout=5)
    assert balanced(tracker.stats())
    assert tracker.stats().delivered == 3


def test_stats_add_up_across_a_hand_over_and_a_recovery(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    collector.set_faults({"then": {"status": 503}})
    first = make_tracker(environ=lambda_environ(tmp_path), retry_count=0)
    track_many(first, 5)
    first.shutdown(timeout=1)
    assert balanced(first.stats())
    assert first.stats().persisted == 5
    collector.set_faults({"script": [{"status": 207, "reject": 1}]})
    second = make_tracker(environ=lambda_environ(tmp_path))
    track_many(second, 2)
    second.flush(timeout=5)
    stats = second.stats()
    assert balanced(stats), stats
    assert (stats.tracked, stats.recovered, stats.delivered, stats.rejected) == (2, 5, 6, 1)


# -- 8. 413 splitting with a spool ----------------------------------------------------------


def test_413_puts_the_halves_on_disk_before_the_whole_batch_goes(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    collector.set_faults({"script": [{"status": 503}, {"status": 413}, {"status": 503}]})
    tracker = make_tracker(environ=lambda_environ(tmp_path), retry_count=0)
    track_many(tracker, 8)
    tracker.flush(timeout=5)  # 503: the whole batch is spooled
    (whole,) = spooled(tmp_path)
    ids = spooled_ids(tmp_path)
    tracker.flush(timeout=5)  # 413: split; the first half gets a 503
    halves = spooled(tmp_path)
    assert whole not in halves
    assert len(halves) == 2
    assert sorted(spooled_ids(tmp_path)) == sorted(ids)
    assert [len(json.loads(path.read_bytes())["events"]) for path in halves] == [4, 4]

    assert tracker.flush(timeout=5).delivered == 8
    assert spooled(tmp_path) == []
    assert sorted(stored_ids(collector)) == sorted(ids)


# -- 9. corrupt files -----------------------------------------------------------------------


def dead_owner(base: Path, name: str = "4242-deadbeef") -> Path:
    """An owner directory whose process is gone: a lock file no one holds."""
    directory = base / name
    directory.mkdir(parents=True)
    (directory / "lock").touch()
    return directory


def batch_body(ids: list[str], batch_id: str | None = None) -> bytes:
    documents = [
        {
            "event_id": event_id,
            "license_id": "lic_1",
            "occurred_at": "2026-01-01T00:00:00Z",
            "source_system": "sdk",
            "kind": "USAGE",
            "measurements": [{"metric_name": "api_calls", "quantity": 1}],
        }
        for event_id in ids
    ]
    return encode_batch(batch_id or str(uuid.uuid4()), documents)


def write_batch(owner: Path, ids: list[str]) -> Path:
    """A batch file as the spool writes it: ``{batch_id}.json``."""
    batch_id = str(uuid.uuid4())
    path = owner / f"{batch_id}.json"
    path.write_bytes(batch_body(ids, batch_id))
    return path


def test_corrupt_spool_files_are_set_aside_and_the_rest_adopted(
    collector: Collector,
    make_tracker: MakeTracker,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner = dead_owner(tmp_path)
    good = [str(uuid.uuid4()) for _ in range(3)]
    write_batch(owner, good)
    (owner / "0-garbage.json").write_bytes(b"\x00\xff\xfe garbage \x80")
    (owner / "1-truncated.json").write_bytes(batch_body([str(uuid.uuid4())])[:60])
    with caplog.at_level(logging.WARNING, logger="doow_serverless"):
        tracker = make_tracker(environ=lambda_environ(tmp_path))
        result = tracker.flush(timeout=10)
    assert (result.delivered, result.pending) == (3, 0)
    assert sorted(stored_ids(collector)) == sorted(good)
    assert sorted(path.name for path in tmp_path.glob("*.bad")) == [
        "0-garbage.bad",
        "1-truncated.bad",
    ]
    assert caplog.text.count("set aside") == 2
    assert not owner.exists()
    assert tracker.stats().recovered == 3
    assert spooled(tmp_path) == []


def test_an_event_in_two_spooled_files_is_recovered_and_sent_once(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    # A kill between writing a 413's halves and removing the whole batch leaves both.
    owner = dead_owner(tmp_path)
    ids = [str(uuid.uuid4()) for _ in range(4)]
    write_batch(owner, ids)
    write_batch(owner, ids[2:])
    tracker = make_tracker(environ=lambda_environ(tmp_path))
    tracker.prepare()
    assert tracker.stats().recovered == 4
    assert tracker.flush(timeout=10).delivered == 4
    stats = collector.stats()
    assert (stats["events_stored"], stats["duplicates"]) == (4, 0)
    assert sorted(stored_ids(collector)) == sorted(ids)
    assert spooled(tmp_path) == []
    assert balanced(tracker.stats())


# -- 10. an unusable spool directory --------------------------------------------------------


def test_an_unusable_spool_directory_is_reported_once_and_delivery_goes_on(
    collector: Collector, make_tracker: MakeTracker, reported: Reported, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    tracker = make_tracker(environ=lambda_environ(blocker / "spool"))
    tracker.prepare()
    track_many(tracker, 3)
    assert tracker.flush(timeout=10).delivered == 3
    track_many(tracker, 2)
    assert tracker.flush(timeout=10).delivered == 2
    assert reported.kinds() == ["DoowConfigError"]
    assert isinstance(reported[0], DoowConfigError)
    assert "spool" in str(reported[0])
    assert collector.stats()["events_stored"] == 5


# -- 11. fork --------------------------------------------------------------------------------


def lock_is_held(directory: Path) -> bool:
    fd = os.open(directory / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_takes_its_own_spool_and_leaves_the_parents_lock(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    collector.set_faults({"script": [{"status": 503}]})
    parent = make_tracker(environ=lambda_environ(tmp_path), retry_count=0)
    track_many(parent, 3)
    assert parent.flush(timeout=5).pending == 3
    (parent_dir,) = [path.parent for path in spooled(tmp_path)]

    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            parent.track("child", 1, "lic_1")
            result = parent.flush(timeout=5)
            owners = {path for path in tmp_path.iterdir() if path.is_dir()}
            ok = (
                result.delivered == 1
                and parent.stats().recovered == 0
                and len(owners) == 2
                and (parent_dir / "lock").exists()
            )
            parent.shutdown(timeout=1)
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert lock_is_held(parent_dir)
    assert len(spooled_ids(tmp_path)) == 3

    other = make_tracker(environ=lambda_environ(tmp_path))
    other.prepare()
    assert other.stats().recovered == 0  # the parent is alive: its batch is its own
    assert parent.flush(timeout=10).delivered == 3
    stats = collector.stats()
    assert (stats["events_stored"], stats["duplicates"]) == (4, 0)


# -- processes starting together ------------------------------------------------------------


def orphans(base: Path, count: int) -> list[str]:
    """``count`` dead owners' directories, one single-event batch in each; the event ids."""
    ids = []
    for n in range(count):
        event_id = str(uuid.uuid4())
        write_batch(dead_owner(base, f"{n}-dead"), [event_id])
        ids.append(event_id)
    return ids


def recovered_together(base: Path, processes: int) -> list[tuple[str, int]]:
    """Forked processes open trackers on ``base`` at once; each says what its first flush
    recovered, or what it raised."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes)
    results = context.Queue()

    def child() -> None:
        try:
            tracker = DoowTracker(
                KEY, endpoint="http://127.0.0.1:9", environ={}, spool=base, log_unsent=False
            )
            barrier.wait(timeout=CHILD_WAIT_S)
            try:
                tracker.flush(timeout=0)
                results.put(("ok", tracker.stats().recovered))
            except Exception as exc:
                results.put((f"flush raised {exc!r}", 0))
            results.close()
            results.join_thread()
        finally:
            os._exit(0)

    started = [context.Process(target=child) for _ in range(processes)]
    for process in started:
        process.start()
    outcomes = [results.get(timeout=CHILD_WAIT_S) for _ in started]
    for process in started:
        process.join(timeout=CHILD_WAIT_S)
    return outcomes


def test_processes_starting_together_recover_every_orphan_once_and_never_raise(
    tmp_path: Path,
) -> None:
    for round_number in range(5):  # the race shows in the first round on a 2-core VM
        base = tmp_path / str(round_number)
        ids = orphans(base, 100)
        outcomes = recovered_together(base, processes=4)
        assert [what for what, _ in outcomes] == ["ok"] * 4
        assert sum(count for _, count in outcomes) == len(ids)

"""Regressions from the review of the spool, the log fallback, replay and the deadline watch.

Each test reproduces a failure the review demonstrated (scripts in the review's notes: a
flush overrunning its budget on a large backlog, an undeletable spool file raising out of
``flush()``, events lost when overlapping files are adopted or a 413 split finds the spool
full, a leaked file after a late write of a combined part, a batch printed twice, replay
crashing or miscounting, the deadline watch firing too late for a large backlog, recovered
events filling the queue). Real parts only: a collector on 127.0.0.1, child processes that
are really killed, the real ``doow-serverless replay`` command.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from doow_serverless import DoowQueueFullError
from doow_serverless._client.tracker import RESPONSE_MARGIN_S
from doow_serverless._core.wire import encode_batch
from doow_serverless._delivery.outbox import Unencodable
from doow_serverless._durability.lines import read_log, unsent_lines
from doow_serverless._invocation.engine import InvocationEngine
from doow_serverless._invocation.policy import FlushPolicy
from doow_serverless._invocation.watch import unwatch, watch
from doow_serverless_dev.collector import Collector

from .conftest import KEY, MakeTracker, Reported, track_many
from .test_deadlines import TOLERANCE_S
from .test_replay import document, replay, summary
from .test_spool import (
    CHILD_WAIT_S,
    balanced,
    child_tracker,
    dead_owner,
    flushed,
    hanging,
    key_ids,
    kill,
    lambda_environ,
    running_child,
    spooled,
    spooled_ids,
    stored_ids,
    wait_for,
    write_batch,
)

REPO = Path(__file__).resolve().parents[2]
UNREACHABLE = "http://127.0.0.1:1"

# A child process: one Lambda-like tracker on a spool directory. It tracks `count` events
# with idempotency keys `ev-{n}` and metadata padded by `pad` bytes, flushes once (or, with
# `prepare_only`, only opens the spool, adopting what dead processes left), prints the
# result as a {"flushed": ...} line and waits to be killed.
CHILD = r"""
import json, os, sys
from doow_serverless import DoowTracker

o = json.loads(sys.argv[1])
tracker = DoowTracker(
    o["key"], endpoint=o["endpoint"], retry_count=0,
    environ={"AWS_LAMBDA_FUNCTION_NAME": "child", "DOOW_TRACK_SPOOL_DIR": o["spool"]},
    max_queue_size=o["max_queue_size"], spool_max_bytes=o["spool_max_bytes"],
    log_unsent=o["log_unsent"],
)
for n in range(o["count"]):
    tracker.track("api_calls", 1, "lic_1", idempotency_key=f"ev-{n}",
                  metadata={"pad": "x" * o["pad"]})
if o["prepare_only"]:
    tracker.prepare()
    stats = tracker.stats()
    result = {"pending": stats.pending, "recovered": stats.recovered}
else:
    flushed = tracker.flush(timeout=5.0)
    result = {"pending": flushed.pending, "delivered": flushed.delivered}
print(json.dumps({"flushed": result}), flush=True)
sys.stdin.read()
os._exit(0)
"""

# A child process running a Lambda handler (the real wrapper, the runtime client's context
# class) that tracks `count` events, then runs into its deadline: the parent kills it there,
# as Lambda does.
CHILD_LAMBDA = r"""
import json, sys, time
from doow_serverless import DoowTracker
from tests.aws_lambda.conftest import lambda_context

o = json.loads(sys.argv[1])
tracker = DoowTracker(
    o["key"], endpoint=o["endpoint"], log_unsent=False, max_queue_size=o["count"],
    environ={"AWS_LAMBDA_FUNCTION_NAME": "child", "DOOW_TRACK_SPOOL_DIR": o["spool"]},
)
tracker.prepare()

@tracker.with_lambda(reserve=o["reserve"])
def handler(event, context):
    for n in range(o["count"]):
        tracker.track("api_calls", 1, "lic_1", idempotency_key=f"ev-{n}",
                      metadata={"n": n, "pad": "x" * o["pad"]})
    print(json.dumps({"tracked": time.time()}), flush=True)
    time.sleep(60)  # still running at the deadline

context = lambda_context(o["remaining"])
deadline = time.time() + context.get_remaining_time_in_millis() / 1000
print(json.dumps({"deadline": deadline}), flush=True)
handler({}, context)
"""


@contextlib.contextmanager
def spooling_child(
    spool: Path,
    endpoint: str,
    *,
    count: int = 0,
    pad: int = 0,
    max_queue_size: int = 10_000,
    spool_max_bytes: int = 64 * 1024 * 1024,
    log_unsent: bool = True,
    prepare_only: bool = False,
) -> Iterator[subprocess.Popen[str]]:
    """A child process running CHILD; SIGKILLed when the block ends (if not before)."""
    options = {
        "key": KEY,
        "endpoint": endpoint,
        "spool": str(spool),
        "count": count,
        "pad": pad,
        "max_queue_size": max_queue_size,
        "spool_max_bytes": spool_max_bytes,
        "log_unsent": log_unsent,
        "prepare_only": prepare_only,
    }
    with running_child(CHILD, options) as child:
        yield child


def sigkill(child: subprocess.Popen[str]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=CHILD_WAIT_S)


@contextlib.contextmanager
def stdout_to_a_pipe() -> Iterator[list[bytes]]:
    """``sys.stdout`` writes to a real pipe, drained by another thread (as a log agent does);
    what was written is in the yielded list once the block ends."""
    read_fd, write_fd = os.pipe()
    chunks: list[bytes] = []

    def drain() -> None:
        while chunk := os.read(read_fd, 1 << 16):
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stream = open(write_fd, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        with contextlib.redirect_stdout(stream):
            yield chunks
    finally:
        stream.close()
        reader.join(timeout=30)
        os.close(read_fd)


# -- 1. a large backlog cannot hold an invocation past its deadline ---------------------------
#
# On a serverless platform, what a flush cannot send is written where it survives the
# process (log lines, the spool) whatever the budget of sending: the invocation's reserve
# pays for it. That writing still stops short of the hard deadline, so the response goes
# back in time (a kill at the deadline would lose it anyway).

BACKLOG = 10_000
# ~3 KB of metadata an event: 30 MB to spool or print, seconds of work were it unbounded.
BACKLOG_PAD = 3000
RESERVE_S = 0.25
SMALL_RESERVE_S = 0.01


def run_invocation(
    tracker: Any, remaining: float, handler: Any, reserve: float = RESERVE_S
) -> tuple[float, float]:
    """Run ``handler`` as a Lambda invocation with ``remaining`` seconds to its deadline;
    (its deadline, when it returned), as ``time.monotonic()`` values."""
    engine = InvocationEngine(tracker, FlushPolicy(2.0, reserve), "invocation")
    started = time.monotonic()
    engine.run(handler, invocation_id=str(uuid.uuid4()), remaining=lambda: remaining)
    return started + remaining, time.monotonic()


def logged_ids(printed: list[bytes]) -> set[str]:
    contents = read_log(b"".join(printed).decode().splitlines())
    return {
        document["event_id"]
        for record in contents.records
        for document in record.events
        if isinstance(document, dict)
    }


@pytest.mark.parametrize("spool", [True, False], ids=["spool-on", "spool-off"])
def test_events_tracked_with_no_time_left_are_all_logged_and_the_reserve_is_checked(
    collector: Collector,
    make_tracker: MakeTracker,
    tmp_path: Path,
    spool: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 30 MB tracked in one invocation that ends inside its reserve: nothing can be sent,
    # and every event still gets its line (the last resort is never clipped away). Writing
    # that much takes longer than the reserve: the engine says so, once. (The reserve is
    # small here: writing 30 MB takes 25-100 ms on this machine, less than half of the
    # default 250 ms since the flush path got faster, and the premise must hold anywhere.)
    collector.set_faults({"then": {"action": "hang"}})
    tracker = make_tracker(
        environ=lambda_environ(tmp_path / "spool" if spool else "off"), max_queue_size=BACKLOG
    )
    tracker.prepare()

    def handler() -> None:
        for n in range(BACKLOG):
            tracker.track("api_calls", 1, "lic_1", metadata={"n": n, "pad": "x" * BACKLOG_PAD})

    with stdout_to_a_pipe() as printed, caplog.at_level(logging.WARNING, "doow_serverless"):
        run_invocation(tracker, SMALL_RESERVE_S, handler, reserve=SMALL_RESERVE_S)
    assert collector.stats()["requests"] == 0
    assert len(logged_ids(printed)) == BACKLOG
    assert balanced(tracker.stats())
    assert sum("raise the reserve" in record.getMessage() for record in caplog.records) == 1
    tracker._shutdown(0, hand_over=False)


@pytest.mark.parametrize(
    ("budget", "healthy"),
    [(0.0, True), (0.1, True), (0.3, True), (0.1, False), (0.3, False)],
    ids=["0s", "0.1s", "0.3s", "0.1s-503", "0.3s-503"],
)
@pytest.mark.parametrize("spool", [True, False], ids=["spool-on", "spool-off"])
def test_a_backlog_from_an_outage_cannot_hold_an_invocation_past_its_deadline(
    collector: Collector,
    make_tracker: MakeTracker,
    tmp_path: Path,
    spool: bool,
    budget: float,
    healthy: bool,
) -> None:
    if not healthy:
        collector.set_faults({"then": {"status": 503}})
    tracker = make_tracker(
        environ=lambda_environ(tmp_path / "spool" if spool else "off"), max_queue_size=BACKLOG
    )
    tracker.prepare()  # as the Lambda wrapper does at init: the client is built already
    for n in range(BACKLOG):
        tracker.track("api_calls", 1, "lic_1", metadata={"n": n, "pad": "x" * BACKLOG_PAD})
    with stdout_to_a_pipe() as printed:
        # The outage: earlier invocations wrote their events' lines and could send nothing.
        tracker.flush(timeout=0)
        deadline, ended = run_invocation(tracker, budget + RESERVE_S, lambda: None)
    # A backlog already kept costs the next invocation nothing but its sending, which keeps
    # to its budget; spooling stops short of the deadline.
    assert ended <= deadline - RESPONSE_MARGIN_S + TOLERANCE_S, (deadline, ended)
    stats = tracker.stats()
    assert stats.delivered <= collector.stats()["events_stored"]
    assert stats.pending == BACKLOG - stats.delivered
    if healthy and budget >= 0.3:
        assert stats.delivered > 0
    assert balanced(stats)
    # Write-ahead: every event has its line, and none reached the server before it.
    logged = logged_ids(printed)
    assert len(logged) == BACKLOG
    assert set(stored_ids(collector)) <= logged
    # Handing 30 MB over at teardown would only load the machine for the tests after this.
    tracker._shutdown(0, hand_over=False)


@pytest.mark.parametrize("spool", [True, False], ids=["spool-on", "spool-off"])
def test_a_flush_while_the_watch_persists_a_large_backlog_ends_with_every_event_logged_once(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path, spool: bool
) -> None:
    spool_dir = tmp_path / "spool"
    count = 30_000
    collector.set_faults({"then": {"action": "hang"}})
    tracker = make_tracker(
        environ=lambda_environ(spool_dir if spool else "off"), max_queue_size=count
    )
    tracker.prepare()
    for n in range(count):
        tracker.track(
            "api_calls", 1, "lic_1", idempotency_key=f"ev-{n}", metadata={"pad": "x" * 1000}
        )
    engine = InvocationEngine(tracker, FlushPolicy(0.1, 0.05), "invocation")
    with stdout_to_a_pipe() as printed:
        # The watch fires 0.05 s from now (0.1 s before the deadline); the handler returns
        # while it is writing the lines. The flush waits for those lines (the last resort),
        # and writes none of them a second time.
        invocation = engine.begin(str(uuid.uuid4()), 0.15)
        assert wait_for(lambda: printed)
        invocation.finish()
        outbox = tracker._outbox
        kept = [batch for batch in [*outbox.waiting(), *outbox.in_flight()] if batch.logged]
        logged_when_finished = sum(len(batch) for batch in kept)
        # The watch's spooling may go on after the flush: let it end while stdout is the pipe.
        with tracker._sender._carry_over._spooling:
            pass
    tracker._shutdown(0, hand_over=False)
    assert logged_when_finished == count
    contents = read_log(b"".join(printed).decode().splitlines())
    assert sum(len(record.events) for record in contents.records) == count


# -- 2. a spool file that cannot be removed ------------------------------------------------


@contextlib.contextmanager
def immutable(directory: Path) -> Iterator[None]:
    """Nothing in ``directory`` can be created, renamed or removed while inside.

    Root ignores permissions, so as root ``chattr +i``; otherwise the directory's write
    permission is taken away. Where chattr is missing or refused (overlayfs, tmpfs) the test
    is skipped saying so, which ``make test`` does not allow (tests/skips.py)."""
    if os.geteuid() != 0:
        mode = directory.stat().st_mode
        directory.chmod(0o555)
        undo = ["chmod", oct(mode & 0o7777)[2:], str(directory)]
    else:
        if shutil.which("chattr") is None:
            pytest.skip("chattr is not available: cannot make unlink fail for root")
        done = subprocess.run(
            ["chattr", "+i", str(directory)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            pytest.skip(f"chattr +i failed here: {done.stderr.strip() or done.returncode}")
        undo = ["chattr", "-i", str(directory)]
    try:
        probe = directory / "probe"
        try:
            probe.touch()
        except PermissionError:
            pass
        else:
            probe.unlink()
            pytest.skip(f"{directory} still took a new file: cannot make unlink fail here")
        yield
    finally:
        subprocess.run(undo, capture_output=True, check=False)


def test_an_undeletable_spool_file_neither_raises_nor_strands_its_batch(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    collector.set_faults({"then": {"status": 503}})
    tracker = make_tracker(environ=lambda_environ(spool), retry_count=0)
    track_many(tracker, 5)
    assert tracker.flush(timeout=1.0).pending == 5
    assert len(spooled_ids(spool)) == 5
    [owner] = [path for path in spool.iterdir() if path.is_dir()]
    with immutable(owner):
        collector.clear_faults()
        result = tracker.flush(timeout=5.0)  # the delivered batch's file cannot go
        assert (result.delivered, result.pending) == (5, 0)
        track_many(tracker, 3)  # and the tracker goes on: nothing is stuck in flight
        again = tracker.flush(timeout=5.0)
        assert (again.delivered, again.pending) == (3, 0)
        stats = tracker.stats()
        assert stats.delivered == collector.stats()["events_stored"] == 8
        assert stats.pending == 0
        assert balanced(stats)
        assert tracker.shutdown(timeout=1.0).pending == 0
    # The file stayed: the next process sends it again, and the server counts duplicates.
    successor = make_tracker(environ=lambda_environ(spool))
    assert successor.flush(timeout=5.0).delivered == 5
    assert (collector.stats()["events_stored"], collector.stats()["duplicates"]) == (8, 5)
    assert spooled(spool) == []


# -- 3. adopting overlapping files with a nearly full spool ---------------------------------


def test_overlapping_files_adopted_by_a_process_killed_again_lose_nothing(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    # A kill between writing a combined batch and removing its parts leaves one file that
    # holds a subset of the other's events; they sort so the subset is adopted first.
    spool = tmp_path / "spool"
    owner = dead_owner(spool)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    part_id = "00000000-0000-4000-8000-00000000000a"
    whole_id = "ffffffff-ffff-4fff-8fff-fffffffffffd"
    part = encode_batch(part_id, [document(event_id) for event_id in ids[:3]])
    whole = encode_batch(whole_id, [document(event_id) for event_id in ids])
    (owner / f"{part_id}.json").write_bytes(part)
    (owner / f"{whole_id}.json").write_bytes(whole)

    # The next process adopts both with a spool that has room for exactly them, and is
    # killed before it could send anything.
    with spooling_child(
        spool, UNREACHABLE, spool_max_bytes=len(part) + len(whole), prepare_only=True
    ) as child:
        assert flushed(child) == {"pending": 5, "recovered": 5}
        sigkill(child)
    assert sorted(set(spooled_ids(spool))) == sorted(ids)

    successor = make_tracker(environ=lambda_environ(spool))
    result = successor.flush(timeout=10.0)
    assert (result.delivered, result.pending) == (5, 0)
    assert sorted(stored_ids(collector)) == sorted(ids)
    assert collector.stats()["duplicates"] == 0
    assert spooled(spool) == []


# -- 4. a 413 split when the spool has no room for the halves -------------------------------


@pytest.mark.parametrize(
    ("script", "then", "killed"),
    [
        ([{"status": 413}], {"status": 503}, "after the flush"),
        ([{"status": 413}, {"action": "accept"}], {"status": 503}, "after the flush"),
        ([{"status": 413}], {"action": "hang"}, "while a half is sent"),
    ],
    ids=["no-half-delivered", "first-half-delivered", "first-half-in-flight"],
)
def test_a_413_split_without_room_for_the_halves_keeps_unsent_events_on_disk(
    collector: Collector,
    make_tracker: MakeTracker,
    tmp_path: Path,
    script: list[Any],
    then: dict[str, Any],
    killed: str,
) -> None:
    spool = tmp_path / "spool"
    everything = set(key_ids("ev", 10))
    collector.set_faults({"script": script, "then": then})
    # Ten events of ~1.2 KB: the batch (~12 KB) fits the bound, the batch and a half do not.
    with spooling_child(
        spool, collector.url, count=10, pad=1000, spool_max_bytes=15_000, log_unsent=False
    ) as child:
        if killed == "after the flush":
            pending = flushed(child)["pending"]
            assert pending == (10 if len(script) == 1 else 5)
        else:
            assert wait_for(lambda: hanging(collector) >= 1)
        sigkill(child)  # after the split, before the halves were delivered
    assert collector.stats()["requests_by_status"].get("413") == 1
    stored = set(stored_ids(collector))
    assert len(spooled(spool)) == 1  # the halves found no room: the whole batch's file stays
    assert everything - stored <= set(spooled_ids(spool))

    collector.clear_faults()
    successor = make_tracker(environ=lambda_environ(spool))
    result = successor.flush(timeout=10.0)
    assert result.pending == 0
    assert set(stored_ids(collector)) == everything
    assert collector.stats()["events_stored"] == 10
    assert spooled(spool) == []


# -- 5. a late spool write of a part combined into another batch ----------------------------


def test_a_late_spool_write_of_a_combined_part_leaves_no_file(
    collector: Collector, make_tracker: MakeTracker, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    tracker = make_tracker(environ=lambda_environ(spool_dir))
    tracker.prepare()
    outbox, carry_over = tracker._outbox, tracker._sender._carry_over
    spool = carry_over._spool
    assert spool is not None
    refused: list[Unencodable] = []
    attribution = tracker.config.attribution
    # The deadline watch takes the first batch to write it, and is slow about it ...
    track_many(tracker, 30)
    first = outbox.form_one(attribution, refused)
    track_many(tracker, 30)
    second = outbox.form_one(attribution, refused)
    assert first is not None and second is not None
    # ... meanwhile a flush sends both batches as one request,
    combined = outbox.claim(attribution, refused)
    assert combined is not None and len(combined) == 60
    outbox.release(combined)  # (claimed here to see it; the flush claims it again)
    result = tracker.flush(timeout=5.0)
    assert (result.delivered, result.pending) == (60, 0)
    # ... and then the watch writes the parts it had taken.
    carry_over.spool(first)
    carry_over.spool(second)
    assert spooled(spool_dir) == []
    assert spool.bytes_used == 0
    assert not spool.holds(first.batch_id) and not spool.holds(second.batch_id)
    assert not spool.holds(combined.batch_id)
    assert first.spool_files == second.spool_files == []
    assert collector.stats()["events_stored"] == 60
    tracker.shutdown(timeout=1.0)
    # Nothing is left for the next process to send again.
    successor = make_tracker(environ=lambda_environ(spool_dir))
    successor.prepare()
    assert successor.stats().recovered == 0
    assert collector.stats()["duplicates"] == 0


# -- 6. the watch and a flush's end-of-flush logging, at the same time ----------------------


class SlowStdout(io.StringIO):
    """A stdout whose writes from any thread but ``fast`` take ``delay`` seconds (a slow
    pipe to the log agent, for the deadline watch's thread only)."""

    def __init__(self, fast: threading.Thread, delay: float) -> None:
        super().__init__()
        self.fast = fast
        self.delay = delay
        self.slow_write_started = threading.Event()
        self.slow_writes_done = 0

    def write(self, text: str) -> int:
        if threading.current_thread() is self.fast:
            return super().write(text)
        self.slow_write_started.set()
        time.sleep(self.delay)
        written = super().write(text)
        self.slow_writes_done += 1
        return written


def test_the_watch_and_a_flush_logging_at_once_print_each_batch_once(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    collector.set_faults({"then": {"status": 503}})
    tracker = make_tracker(environ=lambda_environ("off"), retry_count=0)
    track_many(tracker, 10)
    out = SlowStdout(threading.current_thread(), delay=0.3)
    with contextlib.redirect_stdout(out):
        # An invocation 0.35 s from its deadline, reserve 0.25 s: the watch fires in 0.1 s.
        token = watch(tracker, 0.35, 0.25)
        try:
            assert out.slow_write_started.wait(timeout=10)  # the watch is printing the batch
            result = tracker.flush(timeout=2.0)  # fails (503), then prints what is unsent
            assert wait_for(lambda: out.slow_writes_done >= 1)
        finally:
            unwatch(token)
    assert result.pending == 10
    lines = [line for line in out.getvalue().splitlines() if "doow_unsent" in line]
    batches = Counter(json.loads(line)["doow_unsent"]["batch_id"] for line in lines)
    assert list(batches.values()) == [1], lines
    logged = [
        event["event_id"] for line in lines for event in json.loads(line)["doow_unsent"]["events"]
    ]
    assert len(logged) == len(set(logged)) == 10


# -- 7. replay of cut, invalid and unparseable inputs ---------------------------------------


def unsent_line(ids: list[str]) -> str:
    [line] = unsent_lines(str(uuid.uuid4()), [document(event_id) for event_id in ids], "test")
    return line


def no_traceback(completed: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in completed.stderr, completed.stderr


@pytest.mark.parametrize("bad", ["truncated", "nan", "deep"])
def test_replay_counts_an_unreadable_line_and_delivers_the_rest(
    collector: Collector, tmp_path: Path, bad: str
) -> None:
    good = [str(uuid.uuid4()) for _ in range(3)]
    if bad == "truncated":  # a log pipeline cut the line short
        bad_line = unsent_line([str(uuid.uuid4()) for _ in range(3)])[:300]
    elif bad == "nan":  # json.loads accepts NaN; no request may carry it
        with_good = str(uuid.uuid4())
        good.append(with_good)
        bad_line = unsent_line([str(uuid.uuid4()), with_good]).replace(
            '"kind":"USAGE"', '"metadata":{"x":NaN},"kind":"USAGE"', 1
        )
        assert "NaN" in bad_line
    else:  # nested beyond what a JSON parser's recursion allows
        bad_line = '{"doow_unsent":' + "[" * 200_000
    log = tmp_path / "function.log"
    log.write_text(unsent_line(good[:3]) + "\n" + bad_line + "\n", encoding="utf-8")

    dry = replay(collector, "--dry-run", "--log", str(log), "--json")
    no_traceback(dry)
    assert dry.returncode == 1
    assert summary(dry)[2] == 1  # invalid

    completed = replay(collector, "--log", str(log), "--json")
    no_traceback(completed)
    assert completed.returncode == 1  # something could not be read
    _, unique, invalid, delivered, rejected, unsent, _ = summary(completed)
    assert invalid == 1
    assert (unique, delivered, rejected, unsent) == (len(good), len(good), 0, 0)
    assert sorted(stored_ids(collector)) == sorted(good)


def test_replay_counts_a_set_aside_spool_file_as_unreadable(
    collector: Collector, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    owner = dead_owner(spool)
    good = [str(uuid.uuid4()) for _ in range(2)]
    write_batch(owner, good)
    (owner / "11111111-1111-4111-8111-111111111111.json").write_text(
        '{"batch_id": "11111111-1111-4111-8111-111111111111", "events": [{"event_id": '
    )
    completed = replay(collector, "--spool", str(spool), "--json")
    no_traceback(completed)
    assert completed.returncode == 1
    _, unique, invalid, delivered, rejected, unsent, _ = summary(completed)
    assert invalid >= 1
    assert (unique, delivered, rejected, unsent) == (2, 2, 0, 0)
    assert sorted(stored_ids(collector)) == sorted(good)
    assert spooled(spool) == []


def test_a_dry_run_leaves_out_a_live_processes_spool(collector: Collector, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    collector.set_faults({"then": {"status": 503}})
    with child_tracker(spool, collector, count=3) as child:
        assert flushed(child)["pending"] == 3  # alive, its 3 events in its own directory
        write_batch(dead_owner(spool), [str(uuid.uuid4()) for _ in range(2)])  # and a dead one
        assert len(spooled_ids(spool)) == 5
        requests = collector.stats()["requests"]
        dry = replay(collector, "--dry-run", "--spool", str(spool), "--json")
        no_traceback(dry)
        assert dry.returncode == 0
        assert summary(dry) == [2, 2, 0, 0, 0, 2, 0]  # the dead process's 2 events only
        assert collector.stats()["requests"] == requests
        assert len(spooled_ids(spool)) == 5  # nothing claimed or changed


# -- 8. the deadline watch persists a large backlog before the kill --------------------------


def test_the_watch_has_a_large_backlog_on_disk_by_the_deadline(
    collector: Collector, tmp_path: Path
) -> None:
    # The child builds its context with the runtime client's own class (the `lambda`
    # extra); the Python 3.10 run of the core's tests does not install it.
    pytest.importorskip("awslambdaric")
    spool = tmp_path / "spool"
    count = 10_000
    options = {
        "key": KEY,
        "endpoint": collector.url,
        "spool": str(spool),
        "count": count,
        "pad": 100,
        # The watch fires 0.1 s before the deadline, and (since the fix) 0.5 s before that:
        # persisting 10,000 events takes a few hundred ms, more than 0.1 s, less than 0.6 s.
        "reserve": 0.1,
        "remaining": 3.0,
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_LAMBDA, json.dumps(options)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert child.stdout is not None
        deadline = json.loads(child.stdout.readline())["deadline"]
        assert "tracked" in json.loads(child.stdout.readline())
        # Killed at the deadline, as Lambda does; no tolerance is added: the watch's own
        # reserve (0.1 s) and its early pass (0.5 s before that) are the margin.
        time.sleep(max(0.0, deadline - time.time()))
        sigkill(child)
    finally:
        kill(child)
    on_disk = spooled_ids(spool)
    assert len(on_disk) == len(set(on_disk))
    assert set(on_disk) == set(key_ids("ev", count))


# -- 9. recovered events do not fill the queue ----------------------------------------------


def test_a_successor_of_a_process_that_died_with_a_full_queue_still_accepts_events(
    collector: Collector, make_tracker: MakeTracker, reported: Reported, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    collector.set_faults({"then": {"status": 503}})
    with spooling_child(spool, collector.url, count=200, max_queue_size=200) as child:
        assert flushed(child)["pending"] == 200  # a full queue, all of it spooled
        sigkill(child)
    assert len(spooled_ids(spool)) == 200
    collector.clear_faults()

    successor = make_tracker(environ=lambda_environ(spool), max_queue_size=200)
    successor.prepare()
    assert successor.stats().recovered == 200
    track_many(successor, 50)
    stats = successor.stats()
    assert (stats.tracked, stats.dropped) == (50, 0)
    assert not [error for error in reported if isinstance(error, DoowQueueFullError)]
    result = successor.flush(timeout=10.0)
    assert (result.delivered, result.pending) == (250, 0)
    assert collector.stats()["events_stored"] == 250
    assert balanced(successor.stats())

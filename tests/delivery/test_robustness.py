"""Paths where events used to be stranded, miscounted, doubled or exposed; now they are not."""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from doow_serverless import DoowConfigError, DoowError, DoowTracker
from doow_serverless._delivery.transport import Answer, HttpTransport
from doow_serverless._invocation.engine import InvocationEngine, flush_off_loop
from doow_serverless._invocation.policy import FlushPolicy
from doow_serverless_dev.collector import Collector

from .conftest import KEY, MakeTracker, Reported, track_many
from .test_deadlines import TOLERANCE_S


class FailsOnce(HttpTransport):
    """The real transport, but its first request fails with an error nobody foresaw."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
        if not self.failed:
            self.failed = True
            raise RuntimeError("a bug below the tracker")
        return super().post(url, body, headers, timeout)


def test_an_unexpected_error_while_sending_keeps_the_batch_and_never_raises(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    tracker = make_tracker(transport=FailsOnce())
    track_many(tracker, 3)
    first = tracker.flush(timeout=2)  # must not raise
    assert (first.delivered, first.pending) == (0, 3)
    started = time.monotonic()
    second = tracker.flush(timeout=2)
    assert time.monotonic() - started < 1.0  # not waiting on a stranded in-flight batch
    assert (second.delivered, second.pending) == (3, 0)
    assert collector.stats()["events_stored"] == 3


def deeply_nested(depth: int) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for _ in range(depth):
        document = {"a": document}
    return document


def test_metadata_nested_too_deeply_is_invalid_not_a_crash(
    collector: Collector, make_tracker: MakeTracker, reported: Reported
) -> None:
    tracker = make_tracker()
    tracker.track("m", 1, "lic", metadata=deeply_nested(5_000))  # must not raise
    track_many(tracker, 2)
    assert reported.kinds() == ["DoowValidationError"]
    assert tracker.flush(timeout=5).delivered == 2
    stats = tracker.stats()
    assert (stats.invalid, stats.tracked, stats.delivered, stats.pending) == (1, 2, 2, 0)


def test_an_unreadable_207_is_resent_and_counted_once(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    # A 207 whose body lists no rejections at all: which events were refused is unknown.
    collector.set_faults({"script": [{"status": 207, "after_store": True}]})
    tracker = make_tracker()
    track_many(tracker, 4)
    result = tracker.flush(timeout=5)
    assert (result.delivered, result.rejected, result.pending) == (4, 0, 0)
    stats = collector.stats()
    assert (stats["events_stored"], stats["duplicates"], stats["requests"]) == (4, 4, 2)


def test_events_tracked_in_a_handlers_threads_get_derived_ids_on_lambda(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    tracker = make_tracker()

    def handler() -> None:
        worker = threading.Thread(target=lambda: tracker.track("tokens", 5, "lic_1"))
        worker.start()
        worker.join()

    for _ in range(2):  # Lambda retrying the same request id
        engine = InvocationEngine(tracker, FlushPolicy(5.0, 0.0), "invocation", process_wide=True)
        engine.run(handler, invocation_id="req-1", remaining=lambda: 10.0)
    stats = collector.stats()
    assert (stats["events_stored"], stats["duplicates"]) == (1, 1)


def test_the_config_repr_shows_a_hint_not_the_key() -> None:
    secret = "dk_live_THIS_IS_THE_SECRET_9f3a"
    tracker = DoowTracker(secret, endpoint="http://127.0.0.1:9", environ={})
    assert secret not in repr(tracker.config)
    assert "dk_…9f3a" in repr(tracker.config)
    tracker.shutdown(timeout=0)


@pytest.mark.parametrize("bad", ["dk_abc\ndef", "dk_abc\rdef", "dk_abc\x00def", "dk_ab c", "dk_é"])
def test_keys_that_cannot_go_in_a_header_are_refused_without_showing_them(bad: str) -> None:
    with pytest.raises(DoowConfigError) as caught:
        DoowTracker(bad, endpoint="http://127.0.0.1:9", environ={})
    assert bad not in str(caught.value)
    from_env = DoowTracker(endpoint="http://127.0.0.1:9", environ={"DOOW_TRACK_API_KEY": bad})
    assert from_env.config.send_blocker is not None
    assert bad not in " ".join(from_env.config.warnings)
    from_env.shutdown(timeout=0)


def test_a_key_echoed_by_the_server_never_reaches_on_error(
    collector: Collector, make_tracker: MakeTracker, reported: Reported
) -> None:
    collector.set_faults({"script": [{"status": 400, "message": f"bad request from {KEY}"}]})
    tracker = make_tracker()
    track_many(tracker, 1)
    tracker.flush(timeout=5)
    assert reported
    assert all(KEY not in f"{error} {error!r}" for error in reported)


def test_an_async_flush_is_bounded_even_when_the_loops_executor_is_busy(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    collector.set_faults({"then": {"action": "hang"}})
    tracker = make_tracker()
    track_many(tracker, 1)

    async def scenario() -> float:
        blockers = [asyncio.to_thread(time.sleep, 3) for _ in range(40)]
        busy = asyncio.gather(*blockers)  # the default executor is saturated
        started = time.monotonic()
        await flush_off_loop(tracker, 0.5)
        elapsed = time.monotonic() - started
        await busy
        return elapsed

    assert asyncio.run(scenario()) <= 0.5 + TOLERANCE_S
    collector.clear_faults()


def test_infinite_budgets_are_accepted(collector: Collector, make_tracker: MakeTracker) -> None:
    tracker = make_tracker()
    track_many(tracker, 1)
    assert tracker.flush(timeout=math.inf).pending == 0
    assert tracker.shutdown(timeout=math.inf).pending == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_does_not_send_the_parents_events(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    tracker = make_tracker(environ={}, flush_interval=60.0)
    track_many(tracker, 3)  # random ids: sent by both processes they would count twice
    pid = os.fork()
    if pid == 0:  # the child
        stats = tracker.stats()
        tracker.track("child", 1, "lic")
        ok = stats.pending == 0 and tracker.flush(timeout=5).delivered == 1
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert tracker.flush(timeout=5).delivered == 3
    stored = collector.stats()
    assert (stored["events_stored"], stored["duplicates"]) == (4, 0)


def test_stats_always_add_up_while_flushing(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    tracker = make_tracker(max_queue_size=50_000)
    done = threading.Event()
    broken: list[Any] = []

    def watch() -> None:
        while not done.is_set():
            stats = tracker.stats()
            if stats.tracked != stats.delivered + stats.rejected + stats.pending:
                broken.append(stats)

    watcher = threading.Thread(target=watch)
    watcher.start()
    for _ in range(20):
        track_many(tracker, 200)
        tracker.flush(timeout=5)
    done.set()
    watcher.join()
    assert broken == []


def test_on_error_gets_doow_errors_only(make_tracker: MakeTracker, reported: Reported) -> None:
    tracker = make_tracker(endpoint="http://127.0.0.1:9", retry_count=0)
    track_many(tracker, 1)
    tracker.flush(timeout=0.5)
    assert reported
    assert all(isinstance(error, DoowError) for error in reported)

"""flush(timeout) is bounded and honest: against a hanging server, with no budget, in flight."""

from __future__ import annotations

import threading
import time

from doow_serverless import DoowDeliveryError, FlushResult
from doow_serverless_dev.collector import Collector

from .conftest import MakeTracker, track_many

# A flush may overrun its budget by scheduling noise on a loaded 2-core machine, no more.
TOLERANCE_S = 0.3


def test_a_hanging_server_cannot_hold_a_flush_past_its_budget(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    collector.set_faults({"then": {"action": "hang"}})
    tracker = make_tracker(timeout=10.0)  # the per-request timeout is clipped to the budget
    track_many(tracker, 5)
    for budget in (0.3, 1.0):
        started = time.monotonic()
        result = tracker.flush(timeout=budget)
        elapsed = time.monotonic() - started
        assert elapsed <= budget + TOLERANCE_S, (budget, elapsed)
        assert result.pending == 5
        assert isinstance(result.error, DoowDeliveryError)

    collector.clear_faults()
    recovered = tracker.flush(timeout=5)
    assert (recovered.delivered, recovered.pending) == (5, 0)
    assert collector.stats()["events_stored"] == 5


def test_slow_answers_past_the_budget_keep_the_batch_for_later(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    collector.set_faults({"script": [{"action": "accept", "delay_ms": 1500}]})
    tracker = make_tracker()
    track_many(tracker, 2)
    started = time.monotonic()
    result = tracker.flush(timeout=0.5)
    assert time.monotonic() - started <= 0.5 + TOLERANCE_S
    assert result.pending == 2
    time.sleep(1.2)  # let the slow request finish on the server: it stored the events
    again = tracker.flush(timeout=5)
    assert again.pending == 0
    stats = collector.stats()
    assert stats["events_stored"] == 2
    assert stats["duplicates"] == 2  # the resend carried the same ids


def test_no_budget_sends_nothing_and_keeps_everything(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    tracker = make_tracker()
    track_many(tracker, 3)
    result = tracker.flush(timeout=0)
    assert (result.delivered, result.pending) == (0, 3)
    assert collector.stats()["requests"] == 0
    assert tracker.flush(timeout=5).delivered == 3


def test_flush_waits_for_a_batch_another_thread_has_in_flight(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    # The collector holds the first request 1.5 s before storing and answering it.
    collector.set_faults({"script": [{"action": "accept", "delay_ms": 1500}]})
    tracker = make_tracker()
    track_many(tracker, 4)
    results: list[FlushResult] = []
    first = threading.Thread(target=lambda: results.append(tracker.flush(timeout=5)))
    first.start()
    give_up = time.monotonic() + 5
    while collector.faults()["position"] == 0 and time.monotonic() < give_up:
        time.sleep(0.005)
    # The first flush's request reached the collector, which holds it unanswered.
    assert collector.faults()["position"] == 1
    answered_before = collector.stats()["requests_by_status"]
    second = tracker.flush(timeout=5)
    answered_after = collector.stats()["requests_by_status"]
    first.join()
    # The second flush began while the request was held, and returned once it was
    # answered, having sent nothing of its own...
    assert (answered_before, answered_after) == ({}, {"202": 1})
    assert (second.delivered, second.pending) == (0, 0)
    # ...for the first flush delivered the batch, in the collector's only request.
    assert [(result.delivered, result.pending) for result in results] == [(4, 0)]
    stats = collector.stats()
    assert (stats["requests"], stats["batches"], stats["events_stored"]) == (1, 1, 4)


def test_a_waiting_flush_still_returns_at_its_own_deadline(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    collector.set_faults({"script": [{"action": "hang"}]})
    tracker = make_tracker()
    track_many(tracker, 2)
    holder = threading.Thread(target=tracker.flush, kwargs={"timeout": 3})
    holder.start()
    time.sleep(0.2)
    started = time.monotonic()
    result = tracker.flush(timeout=0.4)
    assert time.monotonic() - started <= 0.4 + TOLERANCE_S
    assert result.pending == 2
    collector.clear_faults()
    holder.join()


def test_eight_threads_lose_and_duplicate_nothing(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    tracker = make_tracker(max_queue_size=20_000)
    per_thread = 600
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        start.wait()
        for n in range(per_thread):
            tracker.track("api_calls", 1, f"lic_{worker}", attribution={"n": n})
            if n % 150 == 0:
                tracker.flush(timeout=5)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = tracker.flush(timeout=10)
    assert final.pending == 0
    stats = collector.stats()
    assert stats["events_stored"] == 8 * per_thread
    assert stats["duplicates"] == 0
    assert tracker.stats().delivered == 8 * per_thread
    per_license = {row["license_id"]: row["events"] for row in stats["metrics"]}
    assert per_license == {f"lic_{worker}": per_thread for worker in range(8)}


def test_the_connection_is_kept_alive_across_flushes(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    tracker = make_tracker()
    for _ in range(10):
        track_many(tracker, 1)
        assert tracker.flush(timeout=5).pending == 0
    stats = collector.stats()
    assert (stats["requests"], stats["connections"]) == (10, 1)


def test_the_first_flush_builds_its_client_inside_the_budget(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    collector.set_faults({"then": {"action": "hang"}})
    tracker = make_tracker()  # its HTTP client is not built yet
    track_many(tracker, 1)
    started = time.monotonic()
    result = tracker.flush(timeout=0.4)
    assert time.monotonic() - started <= 0.4 + TOLERANCE_S
    assert result.pending == 1
    collector.clear_faults()

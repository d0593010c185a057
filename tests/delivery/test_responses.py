"""Every row of the response table, against the real collector over 127.0.0.1."""

from __future__ import annotations

import socket
import time

import pytest

from doow_serverless import DoowAuthError, DoowDeliveryError, DoowRejectedError
from doow_serverless_dev.collector import Collector

from ..conftest import CollectorFactory
from .conftest import MakeTracker, Reported, track_many


def stored_ids(collector: Collector) -> list[str]:
    return sorted(event["event_id"] for event in collector.events(limit=10_000))


def test_202_delivers_everything_in_one_request(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    tracker = make_tracker()
    tracker.track(
        "tokens",
        1024,
        "lic_abc",
        unit="tokens",
        attribution={"model": "gpt-4o"},
        metadata={"request_id": "req_1"},
    )
    track_many(tracker, 4)
    result = tracker.flush(timeout=5)
    assert (result.delivered, result.rejected, result.pending, result.ok) == (5, 0, 0, True)
    stats = collector.stats()
    assert (stats["requests"], stats["events_stored"], stats["duplicates"]) == (1, 5, 0)
    [tokens] = collector.events(metric="tokens")
    assert tokens["license_id"] == "lic_abc"
    assert tokens["quantity"] == 1024
    assert tokens["unit"] == "tokens"
    assert tokens["attribution"] == {"model": "gpt-4o"}
    assert tokens["metadata"] == {"request_id": "req_1"}
    assert tokens["kind"] == "USAGE"


def test_more_than_500_events_go_in_batches_of_at_most_500(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    tracker = make_tracker(max_queue_size=5_000)
    track_many(tracker, 1_234)
    result = tracker.flush(timeout=10)
    assert result.delivered == 1_234
    stats = collector.stats()
    assert (stats["requests"], stats["events_stored"]) == (3, 1_234)


def test_207_reports_rejected_ids_and_never_resends_the_accepted(
    collector_factory: CollectorFactory, make_tracker: MakeTracker, reported: Reported
) -> None:
    strict_collector = collector_factory(reject_licenses=["lic_unknown"])
    tracker = make_tracker(endpoint=strict_collector.url)
    tracker.track("api_calls", 1, "lic_ok")
    tracker.track("api_calls", 1, "lic_unknown")
    tracker.track("api_calls", 1, "lic_ok")
    result = tracker.flush(timeout=5)
    assert (result.delivered, result.rejected, result.pending) == (2, 1, 0)
    [error] = reported
    assert isinstance(error, DoowRejectedError)
    assert error.status == 207
    assert [r.reason for r in error.rejections] == ["unknown license"]
    assert tracker.flush(timeout=5).delivered == 0
    assert tracker.stats().rejected == 1
    assert strict_collector.stats()["requests"] == 1
    assert strict_collector.stats()["events_stored"] == 2


def test_207_from_a_fault_plan_in_the_list_form(
    collector: Collector, make_tracker: MakeTracker, reported: Reported
) -> None:
    collector.set_faults({"script": [{"status": 207, "reject": 2}]})
    tracker = make_tracker()
    track_many(tracker, 5)
    result = tracker.flush(timeout=5)
    assert (result.delivered, result.rejected, result.pending) == (3, 2, 0)
    assert isinstance(reported[0], DoowRejectedError)
    assert len(reported[0].rejections) == 2
    assert collector.stats()["events_stored"] == 3
    assert collector.stats()["requests"] == 1


def test_permanent_4xx_is_reported_and_not_retried(
    collector: Collector, make_tracker: MakeTracker, reported: Reported
) -> None:
    for status in (400, 409, 422):
        collector.reset()
        reported.clear()
        collector.set_faults({"script": [{"status": status}]})
        tracker = make_tracker()
        track_many(tracker, 3)
        result = tracker.flush(timeout=5)
        assert (result.delivered, result.rejected, result.pending) == (0, 3, 0), status
        assert isinstance(result.error, DoowRejectedError)  # result.ok alone would hide it
        assert collector.stats()["requests"] == 1
        assert reported.kinds() == ["DoowRejectedError"]
        assert f"HTTP {status}" in str(reported[0])


@pytest.mark.parametrize(("status", "kind"), [(403, DoowAuthError), (404, DoowDeliveryError)])
def test_403_and_404_stop_sending_and_keep_the_events(
    collector: Collector,
    make_tracker: MakeTracker,
    reported: Reported,
    status: int,
    kind: type[Exception],
) -> None:
    collector.set_faults({"then": {"status": status}})
    tracker = make_tracker()
    track_many(tracker, 3)
    first = tracker.flush(timeout=5)
    assert (first.delivered, first.rejected, first.pending) == (0, 0, 3)
    assert type(first.error) is kind
    assert tracker.flush(timeout=5).pending == 3
    assert collector.stats()["requests"] == 1
    assert [type(error) for error in reported] == [kind]
    assert tracker.stats().rejected == 0


def test_401_is_reported_once_stops_sending_and_keeps_events(
    collector: Collector, make_tracker: MakeTracker, reported: Reported
) -> None:
    collector.set_faults({"then": {"status": 401}})
    tracker = make_tracker()
    track_many(tracker, 3)
    first = tracker.flush(timeout=5)
    assert (first.delivered, first.pending) == (0, 3)
    assert isinstance(first.error, DoowAuthError)
    track_many(tracker, 2)
    second = tracker.flush(timeout=5)
    assert second.pending == 5
    assert collector.stats()["requests"] == 1
    assert reported.kinds() == ["DoowAuthError"]


def test_5xx_and_408_are_retried_with_the_same_ids(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    collector.set_faults({"script": [{"status": 503}, {"status": 500}, {"status": 408}]})
    tracker = make_tracker(retry_count=3)
    track_many(tracker, 4)
    result = tracker.flush(timeout=10)
    assert (result.delivered, result.pending) == (4, 0)
    stats = collector.stats()
    assert stats["requests"] == 4
    assert stats["events_stored"] == 4


def test_an_answer_lost_after_storing_is_resent_and_stored_once(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    collector.set_faults(
        {"script": [{"status": 503, "after_store": True}, {"action": "reset", "after_store": True}]}
    )
    tracker = make_tracker(retry_count=3)
    track_many(tracker, 6)
    result = tracker.flush(timeout=10)
    assert (result.delivered, result.pending) == (6, 0)
    stats = collector.stats()
    assert stats["events_stored"] == 6
    assert stats["duplicates"] == 12  # two resends of six events, each recognised by its id


def test_413_splits_the_batch_and_keeps_ids(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    collector.set_faults({"script": [{"status": 413}, {"status": 413}]})
    tracker = make_tracker()
    track_many(tracker, 8)
    result = tracker.flush(timeout=10)
    assert (result.delivered, result.pending) == (8, 0)
    stats = collector.stats()
    assert stats["events_stored"] == 8
    assert stats["requests"] == 5  # 8 → 413; 4 → 413; 2 + 2 + 4 accepted


def test_413_on_a_single_event_rejects_it(
    collector: Collector, make_tracker: MakeTracker, reported: Reported
) -> None:
    collector.set_faults({"then": {"status": 413}})
    tracker = make_tracker()
    track_many(tracker, 1)
    result = tracker.flush(timeout=5)
    assert (result.delivered, result.rejected, result.pending) == (0, 1, 0)
    assert reported.kinds() == ["DoowRejectedError"]


def test_429_retry_after_within_the_budget_is_honoured(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    collector.set_faults({"script": [{"status": 429, "retry_after": "0.6"}]})
    tracker = make_tracker()
    track_many(tracker, 2)
    started = time.monotonic()
    result = tracker.flush(timeout=5)
    elapsed = time.monotonic() - started
    assert (result.delivered, result.pending) == (2, 0)
    assert elapsed >= 0.6


def test_429_retry_after_beyond_the_budget_returns_at_once_and_holds_off(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    limits = '{"events": {"limit": 100, "current": 101, "retry_after": 30}}'
    collector.set_faults(
        {"script": [{"status": 429, "retry_after": "1", "headers": {"X-Doow-Rate-Limits": limits}}]}
    )
    tracker = make_tracker()
    track_many(tracker, 2)
    started = time.monotonic()
    result = tracker.flush(timeout=2)
    assert time.monotonic() - started < 1.0
    assert result.pending == 2
    again = tracker.flush(timeout=2)
    assert again.pending == 2
    assert isinstance(again.error, DoowDeliveryError)
    assert "rate limited" in str(again.error)
    assert collector.stats()["requests"] == 1


def test_a_later_flush_whose_budget_outlasts_the_retry_after_waits_it_out_and_delivers(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    collector.set_faults({"script": [{"status": 429, "retry_after": "1"}]})
    tracker = make_tracker()
    track_many(tracker, 2)
    first = tracker.flush(timeout=0.5)  # too short to wait: the events are kept
    assert (first.delivered, first.pending) == (0, 2)
    again = tracker.flush(timeout=5)
    assert (again.delivered, again.pending, again.error) == (2, 0, None)
    assert collector.stats()["requests"] == 2


def test_connection_refused_keeps_events_and_returns_within_budget(
    make_tracker: MakeTracker,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    tracker = make_tracker(endpoint=f"http://127.0.0.1:{closed_port}")
    track_many(tracker, 3)
    started = time.monotonic()
    result = tracker.flush(timeout=1.0)
    assert time.monotonic() - started < 1.0 + 0.25
    assert result.pending == 3
    assert isinstance(result.error, DoowDeliveryError)
    assert "ConnectError" in str(result.error)


def test_a_reset_connection_is_retried(collector: Collector, make_tracker: MakeTracker) -> None:
    collector.set_faults({"script": [{"action": "reset"}]})
    tracker = make_tracker()
    track_many(tracker, 3)
    result = tracker.flush(timeout=5)
    assert (result.delivered, result.pending) == (3, 0)
    assert collector.stats()["events_stored"] == 3

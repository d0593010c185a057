"""Threads, shutdown and secrets: what the tracker does around delivery."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from doow_serverless import DoowAuthError, DoowQueueFullError, DoowTracker
from doow_serverless_dev.collector import Collector

from .conftest import KEY, MakeTracker, Reported, track_many


def wait_for(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def flusher_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "doow-serverless-flusher"]


def test_the_constructor_starts_no_thread_and_sends_nothing(collector: Collector) -> None:
    before = threading.active_count()
    tracker = DoowTracker(KEY, endpoint=collector.url, environ={})
    assert threading.active_count() == before
    assert collector.stats()["http_requests"] == 0
    tracker.shutdown(timeout=1)


def test_a_long_running_process_flushes_in_the_background_at_flush_at(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    tracker = make_tracker(environ={}, flush_at=5, flush_interval=60.0)
    track_many(tracker, 4)
    assert len(flusher_threads()) == 1
    time.sleep(0.3)
    assert collector.stats()["events_stored"] == 0
    track_many(tracker, 1)
    assert wait_for(lambda: collector.stats()["events_stored"] == 5)


def test_a_long_running_process_flushes_every_interval(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    tracker = make_tracker(environ={}, flush_interval=0.2)
    track_many(tracker, 2)
    assert wait_for(lambda: collector.stats()["events_stored"] == 2)


@pytest.mark.parametrize(
    "platform_variable",
    ["AWS_LAMBDA_FUNCTION_NAME", "VERCEL", "FUNCTIONS_WORKER_RUNTIME"],
)
def test_no_background_thread_on_serverless_platforms(
    collector: Collector, make_tracker: MakeTracker, platform_variable: str
) -> None:
    before = len(flusher_threads())
    tracker = make_tracker(environ={platform_variable: "1"}, flush_at=1)
    track_many(tracker, 3)
    time.sleep(0.2)
    assert len(flusher_threads()) == before
    assert collector.stats()["requests"] == 0
    assert tracker.platform is not None


def test_shutdown_delivers_what_the_background_thread_has_in_flight(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    collector.set_faults({"script": [{"action": "accept", "delay_ms": 600}]})
    tracker = make_tracker(environ={}, flush_at=3, flush_interval=60.0)
    track_many(tracker, 3)
    assert wait_for(lambda: collector.stats()["http_requests"] >= 1)
    track_many(tracker, 2)
    result = tracker.shutdown(timeout=5)
    assert result.pending == 0
    assert collector.stats()["events_stored"] == 5
    assert collector.stats()["duplicates"] == 0


def test_shutdown_is_idempotent_and_later_events_are_counted_as_dropped(
    collector: Collector, make_tracker: MakeTracker, reported: Reported
) -> None:
    tracker = make_tracker()
    track_many(tracker, 2)
    assert tracker.shutdown(timeout=5).pending == 0
    assert tracker.shutdown(timeout=5).pending == 0
    track_many(tracker, 1)
    assert tracker.stats().dropped == 1
    assert isinstance(reported[-1], DoowQueueFullError)
    assert collector.stats()["events_stored"] == 2


def test_idempotency_keys_and_explicit_ids_dedupe_across_trackers(
    collector: Collector, make_tracker: MakeTracker
) -> None:
    for _ in range(2):  # as if two processes sent the same business events
        tracker = make_tracker()
        tracker.track("charges", 1, "lic_1", idempotency_key="order_42")
        tracker.track("charges", 1, "lic_1", event_id="6e1f0a52-8f5b-4a6c-9a55-0c7f5a2e9e11")
        assert tracker.flush(timeout=5).pending == 0
    stats = collector.stats()
    assert (stats["events_stored"], stats["duplicates"]) == (2, 2)


def test_the_key_never_appears_in_logs_or_reported_errors(
    collector: Collector,
    make_tracker: MakeTracker,
    reported: Reported,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "dk_live_SECRET_never_show_9f8e7d"
    hint = "dk_…8e7d"  # what may be shown where the key would be: prefix and last four
    echoed = {"status": 401, "message": f"unknown API key {secret}"}  # a server quoting it
    collector.set_faults(
        {"script": [{"status": 503}, {"action": "reset"}, {"status": 400}, echoed]}
    )
    with caplog.at_level(logging.DEBUG, logger="doow_serverless"):
        tracker = make_tracker(api_key=secret, retry_count=1, debug=True)
        for _ in range(3):
            track_many(tracker, 2)
            tracker.flush(timeout=3)
        tracker.track("m", -1, "lic")  # a validation error is reported too
        tracker.shutdown(timeout=1)
    assert reported
    everything = (
        caplog.text
        + repr(tracker)
        + " ".join(f"{error!r} {error} {vars(error)}" for error in reported)
    )
    assert secret not in everything
    [refused] = [error for error in reported if isinstance(error, DoowAuthError)]
    said = f"the API key {hint} was refused (401): unknown API key {hint}; sending is stopped"
    assert str(refused).startswith(said)
    assert said in caplog.text
    assert f"key={hint!r}" in repr(tracker)


def test_httpx_does_not_log_the_sdk_own_requests_but_still_logs_the_users(
    collector: Collector, make_tracker: MakeTracker, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx

    def httpx_lines() -> list[str]:
        return [record.getMessage() for record in caplog.records if record.name == "httpx"]

    with caplog.at_level(logging.INFO):
        tracker = make_tracker()
        track_many(tracker, 2)
        assert tracker.flush(timeout=5).pending == 0
        assert collector.stats()["events_stored"] == 2
        assert httpx_lines() == []
        httpx.get(f"{collector.url}/healthz")
    [line] = httpx_lines()
    assert "/healthz" in line

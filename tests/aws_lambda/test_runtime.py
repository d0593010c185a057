"""The wrapped handlers under the real runtime client (awslambdaric) in a subprocess.

The test plays only Lambda's control plane (lambda_local's Runtime API server), and kills
the process at an invocation's deadline as Lambda would; events go to the real collector
over 127.0.0.1.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from doow_serverless_dev.collector import Collector

from .conftest import FUNCTIONS_DIR, MakeFunction, example_event

pytestmark = pytest.mark.timeout(90)


def stored_ids(collector: Collector) -> Counter[str]:
    return Counter(event["event_id"] for event in collector.events(limit=1000))


def test_warm_starts_send_one_request_per_invocation_over_one_connection(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    function = make_function()
    results = [function.invoke(example_event("hello")) for _ in range(20)]

    assert [result.status for result in results] == ["success"] * 20
    assert [result.cold_start for result in results] == [True] + [False] * 19
    assert all(result.payload["statusCode"] == 200 for result in results)
    stats = lambda_collector.stats()
    assert stats["events_stored"] == 20
    assert stats["requests"] == 20
    assert stats["connections"] == 1
    assert stats["duplicates"] == 0
    assert function.cold_starts == 1


def test_all_events_of_an_invocation_go_in_one_request(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    function = make_function()
    result = function.invoke(example_event("orders"))

    assert result.ok, result.body
    stats = lambda_collector.stats()
    assert stats["events_stored"] == 2
    assert stats["requests"] == 1
    quantities = {
        e["measurements"][0]["metric_name"]: e["measurements"][0]["quantity"]
        for e in lambda_collector.events()
    }
    assert quantities == {"api_calls": 1, "order_items": 3}


def test_a_hanging_collector_never_makes_an_invocation_miss_its_deadline(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    function = make_function(timeout=1.0)
    function.invoke(example_event("hello"))  # cold start and a first connection, healthy
    lambda_collector.set_faults({"then": {"action": "hang"}})

    hung = [function.invoke(example_event("hello")) for _ in range(3)]

    # Tolerance: none on the deadline itself. The harness kills the process at the exact
    # deadline, so an answer after it is a timeout; each answer must also be ok.
    assert [result.status for result in hung] == ["success"] * 3, [r.body for r in hung]
    assert function.kills == 0
    assert all(result.margin is not None and result.margin > 0 for result in hung)
    assert function.cold_starts == 1  # the same warm process answered every time

    lambda_collector.clear_faults()
    recovered = function.invoke(example_event("hello"))

    assert recovered.ok
    ids = stored_ids(lambda_collector)
    assert len(ids) == 5  # the first, the three kept during the outage, and this one
    assert set(ids.values()) == {1}


def test_a_handler_that_leaves_no_budget_answers_in_time_and_keeps_its_event(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    function = make_function("handlers.slow", code_dir=FUNCTIONS_DIR, timeout=1.0)

    # 100 ms left after the handler, under the 250 ms reserve: nothing may be sent.
    starved = function.invoke({"leave_ms": 100})

    assert starved.ok, starved.body
    assert function.kills == 0
    assert lambda_collector.stats()["requests"] == 0

    roomy = function.invoke({"leave_ms": 900})

    assert roomy.ok
    stats = lambda_collector.stats()
    assert stats["events_stored"] == 2
    assert stats["requests"] == 1  # the kept event went first, in the same request


def test_a_handler_killed_at_its_deadline_keeps_what_it_tracked(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    function = make_function("handlers.slow", code_dir=FUNCTIONS_DIR, timeout=1.0)

    # The handler never returns: the harness kills the process at the deadline.
    killed = function.invoke({"leave_ms": -10_000})

    assert killed.status == "timeout"
    assert lambda_collector.stats()["requests"] == 0

    # Lambda starts a new runtime process in the same sandbox (same /tmp); it sends the
    # killed invocation's event first, from the spool.
    after = function.invoke({"leave_ms": 900})

    assert after.ok
    assert after.cold_start
    stats = lambda_collector.stats()
    assert stats["events_stored"] == 2
    assert stats["duplicates"] == 0


def test_the_same_request_id_twice_is_counted_once(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    function = make_function()
    first = function.invoke(example_event("orders"), request_id="retried-request-1")
    retry = function.invoke(example_event("orders"), request_id="retried-request-1")
    other = function.invoke(example_event("orders"), request_id="another-request")

    assert first.ok
    assert retry.ok
    assert other.ok
    stats = lambda_collector.stats()
    assert stats["requests"] == 3
    assert stats["events_stored"] == 4  # two per request id
    assert stats["duplicates"] == 2


def test_attempt_idempotency_counts_a_retry_again(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    function = make_function("app_attempt.handler", code_dir=FUNCTIONS_DIR)
    function.invoke(example_event("hello"), request_id="retried-request-2")
    function.invoke(example_event("hello"), request_id="retried-request-2")

    assert lambda_collector.stats()["events_stored"] == 2


def test_freeze_longer_than_the_idle_timeout_loses_and_duplicates_nothing(
    make_function: MakeFunction,
) -> None:
    with Collector(idle_timeout=0.5) as collector:
        function = make_function(collector=collector)
        assert function.invoke(example_event("hello")).ok
        function.freeze()
        # The freeze itself is the scenario: 4x the collector's idle timeout, so it has
        # closed the idle connection while the process could not notice.
        time.sleep(2.0)
        function.thaw()
        thawed = function.invoke(example_event("hello"))

        assert thawed.ok, thawed.body
        assert not thawed.cold_start
        stats = collector.stats()
        assert stats["connections"] == 2  # the dropped connection was replaced
        assert stats["events_stored"] == 2
        assert stats["duplicates"] == 0
        assert not [line for line in function.output if "doow-serverless" in line]


def test_a_raising_handler_reports_the_original_error_and_its_events_are_stored(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    function = make_function("handlers.raising", code_dir=FUNCTIONS_DIR)
    result = function.invoke({"order": "o-17"})

    assert result.status == "error"
    error = result.payload
    assert error["errorType"] == "PaymentDeclined"
    assert error["errorMessage"] == "card declined for o-17"
    assert error["requestId"] == result.request_id
    assert "raise PaymentDeclined" in error["stackTrace"][-1]
    assert lambda_collector.stats()["events_stored"] == 2

    # The environment stays warm after an error, as on Lambda.
    again = function.invoke({"order": "o-18"})
    assert again.status == "error"
    assert not again.cold_start
    assert lambda_collector.stats()["events_stored"] == 4

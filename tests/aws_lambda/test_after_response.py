"""Delivery after the response, under the real runtime client and the Extensions API.

The harness plays Lambda's control plane: an invocation's response goes back to the
caller as soon as the runtime posts it, and the invocation is complete (billed; the next
one may start; the environment may be frozen) only when the SDK's internal extension has
asked for its next event too. The collector answers after ``latency_ms``, as a Doow
across the internet would.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import pytest

from doow_serverless_dev.collector import Collector

from .conftest import FUNCTIONS_DIR, MakeFunction

pytestmark = pytest.mark.timeout(90)
AFTER = {"DOOW_TRACK_DELIVERY": "after-response"}


def make(make_function: MakeFunction, handler: str = "handler", **options: object) -> object:
    return make_function(
        f"delivery_modes.{handler}",
        code_dir=FUNCTIONS_DIR,
        environment={**AFTER, **options.pop("environment", {})},  # type: ignore[dict-item]
        **options,
    )


def stored(collector: Collector) -> Counter[str]:
    return Counter(event["event_id"] for event in collector.events(limit=1000))


def test_the_response_goes_back_before_the_flush_and_the_flush_ends_before_release(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    lambda_collector.set_faults({"latency_ms": 300})
    function = make(make_function)
    for number in range(1, 4):
        result = function.invoke({"count": 2})  # type: ignore[attr-defined]
        assert result.ok, result.body
        # The caller has its answer long before Doow answered the flush ...
        assert result.duration < 0.15, result
        # ... and the invocation is released only after it did: its events are stored.
        assert result.completed is not None and result.completed >= 0.3, result
        assert lambda_collector.stats()["events_stored"] == 2 * number
    assert function.kills == 0  # type: ignore[attr-defined]


def test_a_hanging_endpoint_never_makes_an_invocation_overrun_its_deadline(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    lambda_collector.set_faults({"then": {"action": "hang"}})
    function = make(make_function, timeout=1.5)
    for _ in range(2):
        result = function.invoke({"count": 3})  # type: ignore[attr-defined]
        assert result.ok
        # Released inside its deadline with the reserve's margin (tolerance 100 ms).
        assert result.completed is not None and result.completed <= 1.5 - 0.25 + 0.1, result
    assert function.kills == 0  # type: ignore[attr-defined]
    logged = "\n".join(function.output)  # type: ignore[attr-defined]
    assert logged.count('"doow_unsent"') >= 2  # the events were kept before the response


def test_a_process_killed_after_answering_is_incomplete_but_no_kill_at_the_deadline(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    lambda_collector.set_faults({"then": {"action": "hang"}})
    function = make(make_function, timeout=3.0)
    results = []
    invoking = threading.Thread(target=lambda: results.append(function.invoke({"count": 1})))  # type: ignore[attr-defined]
    invoking.start()
    give_up = time.monotonic() + 10
    while lambda_collector.stats()["requests"] == 0 and time.monotonic() < give_up:
        time.sleep(0.01)
    os.kill(function.pid, signal.SIGKILL)  # type: ignore[attr-defined]  # its flush hangs
    invoking.join()
    [result] = results
    assert result.ok  # the caller had its answer ...
    assert result.completed is None  # ... the invocation was never complete ...
    assert function.kills == 0  # type: ignore[attr-defined]  # ... and no deadline ended it


def test_handler_exceptions_reach_the_runtime_unchanged_and_events_still_go(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    function = make(make_function)
    result = function.invoke({"count": 2, "raise": True})  # type: ignore[attr-defined]
    assert result.status == "error"
    assert result.error_type == "PaymentDeclined"
    assert result.payload["errorMessage"] == "card declined"
    assert lambda_collector.stats()["events_stored"] == 2


def test_a_retry_with_the_same_request_id_is_counted_once(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    function = make(make_function)
    for _ in range(2):
        assert function.invoke({"count": 3}, request_id="retried-request").ok  # type: ignore[attr-defined]
    assert sorted(stored(lambda_collector).values()) == [1, 1, 1]
    assert lambda_collector.stats()["duplicates"] == 3


@pytest.mark.parametrize("handler", ["powertools_inside", "powertools_outside"])
def test_powertools_stacked_in_either_order(
    make_function: MakeFunction, lambda_collector: Collector, handler: str
) -> None:
    lambda_collector.set_faults({"latency_ms": 200})
    function = make(make_function, handler)
    result = function.invoke({"count": 1})  # type: ignore[attr-defined]
    assert result.ok, result.body
    assert result.duration < 0.15
    assert lambda_collector.stats()["events_stored"] == 1
    assert any('"handled"' in line for line in function.output)  # type: ignore[attr-defined]


def test_registration_refused_falls_back_to_the_synchronous_flush_with_one_warning(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    lambda_collector.set_faults({"latency_ms": 200})
    function = make_function("late_decoration.handler", code_dir=FUNCTIONS_DIR, environment=AFTER)
    results = [function.invoke({"count": 1}) for _ in range(2)]
    assert all(result.ok for result in results)
    # Flushed before each answer, as in the synchronous mode.
    assert all((result.duration or 0) >= 0.2 for result in results)
    assert lambda_collector.stats()["events_stored"] == 2
    warnings = [line for line in function.output if "not available" in line]
    assert len(warnings) == 1, warnings
    assert "RegistrationClosed" in warnings[0]

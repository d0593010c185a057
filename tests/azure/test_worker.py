"""Wrapped functions invoked by the real Azure library worker (azure-functions-runtime, 3.13).

The test plays only the Functions host (``_azure_local``: worker init, metadata, load,
invocations, the function timeout); the worker indexes, binds and calls the functions as
on Azure, and the events go to the real collector over 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from doow_serverless._core.wire import event_id_from_seed
from doow_serverless_dev.azure_local import (
    Call,
    TriggerInput,
    http_request,
    queue_message,
    timer_tick,
)
from doow_serverless_dev.collector import Collector

from ..polling import wait_for
from ..replaying import export, replay_log
from .conftest import APPS, TEST_KEY, MakeApp

pytestmark = pytest.mark.timeout(90)

# Short enough for the outage tests to be quick, long enough for a loaded machine.
SHORT_TIMEOUT = {"AzureFunctionsJobHost__functionTimeout": "00:00:03"}
# The flush may take longer than the function has left: the timeout is what bounds it.
NO_FLUSH_CAP = {"DOOW_TRACK_FLUSH_TIMEOUT": "30000"}


def hello(route: str, **query: object) -> TriggerInput:
    url = f"http://localhost/api/{route}"
    return http_request("GET", url, query={key: str(value) for key, value in query.items()})


def stored_ids(collector: Collector) -> Counter[str]:
    return Counter(event["event_id"] for event in collector.events(limit=1000))


@pytest.mark.parametrize("route", ["sync_hello", "async_hello"])
def test_each_invocation_stores_its_events_once_with_ids_from_the_invocation_id(
    make_app: MakeApp, azure_collector: Collector, route: str
) -> None:
    app = make_app()
    results = [app.invoke(route, hello(route, events=2)) for _ in range(5)]

    assert [r.status for r in results] == ["success"] * 5, [r.error for r in results]
    assert {r.http_body for r in results} == {route.split("_", maxsplit=1)[0].encode()}
    stats = azure_collector.stats()
    assert stats["events_stored"] == 10
    assert stats["duplicates"] == 0
    assert stats["requests"] == 5  # one request per invocation, sent before it answered
    assert stats["connections"] == 1  # reused across invocations of the worker
    expected = {event_id_from_seed(f"{r.invocation_id}:{n}") for r in results for n in (0, 1)}
    assert set(stored_ids(azure_collector)) == expected
    assert not [line for line in app.output if "doow-serverless" in line]


@pytest.mark.parametrize("route", ["sync_context", "async_context"])
def test_a_function_that_takes_context_gets_the_workers_context(
    make_app: MakeApp, azure_collector: Collector, route: str
) -> None:
    app = make_app()
    result = app.invoke(route, hello(route), invocation_id="inv-context-1")

    assert result.ok, result.error
    seen = json.loads(result.http_body)
    assert seen["invocation_id"] == "inv-context-1"
    assert seen["function_name"] == route
    # The directory the worker reports is the app's, as for an unwrapped function.
    assert seen["function_directory"] == str(APPS / "v2")
    assert set(stored_ids(azure_collector)) == {event_id_from_seed("inv-context-1:0")}


def test_timer_and_queue_triggers(make_app: MakeApp, azure_collector: Collector) -> None:
    app = make_app()
    tick = app.invoke("tick", timer_tick(), invocation_id="inv-tick")
    job = app.invoke("job", queue_message("do it", message_id="m-1"), invocation_id="inv-job")

    assert tick.ok, tick.error
    assert job.ok, job.error
    by_metric = {e["measurements"][0]["metric_name"]: e for e in azure_collector.events()}
    assert by_metric["ticks"]["event_id"] == event_id_from_seed("inv-tick:0")
    assert by_metric["jobs"]["event_id"] == event_id_from_seed("inv-job:0")
    assert by_metric["jobs"]["attribution"]["id"] == "m-1"


def test_the_same_invocation_id_twice_is_counted_once(
    make_app: MakeApp, azure_collector: Collector
) -> None:
    app = make_app()
    for _ in range(2):
        assert app.invoke("sync_hello", hello("sync_hello", events=2), invocation_id="inv-again").ok
    assert app.invoke("async_hello", hello("async_hello", events=2), invocation_id="inv-other").ok

    stats = azure_collector.stats()
    assert stats["events_stored"] == 4
    assert stats["duplicates"] == 2


def test_a_raising_function_reports_its_own_error_and_its_events_are_stored(
    make_app: MakeApp, azure_collector: Collector
) -> None:
    app = make_app()
    result = app.invoke("fails", hello("fails", order="o-17", events=2))

    assert result.status == "failure"
    assert result.error == "PaymentDeclinedError: card declined for o-17"
    assert azure_collector.stats()["events_stored"] == 2
    assert app.invoke("sync_hello", hello("sync_hello")).ok  # the worker serves on


@pytest.mark.parametrize("route", ["sync_hello", "async_hello"])
def test_a_hanging_collector_never_makes_an_invocation_pass_its_timeout(
    make_app: MakeApp, azure_collector: Collector, route: str
) -> None:
    app = make_app(environment={**SHORT_TIMEOUT, **NO_FLUSH_CAP})
    assert app.timeout == 3.0
    assert app.invoke(route, hello(route)).ok  # a first connection, healthy
    azure_collector.set_faults({"then": {"action": "hang"}})

    hung = [app.invoke(route, hello(route)) for _ in range(2)]

    # Tolerance: none on the timeout itself (the host ends the worker at 3 s, so a later
    # answer is a timeout). The flush uses what it has: it ends at 3 s - 0.25 s reserve,
    # within 0.5 s for a loaded machine.
    assert [r.status for r in hung] == ["success"] * 2, [r.error for r in hung]
    assert app.timeouts == 0
    for result in hung:
        assert result.duration is not None
        assert 3.0 - 0.25 - 0.5 < result.duration < 3.0

    azure_collector.clear_faults()
    assert app.invoke(route, hello(route)).ok
    ids = stored_ids(azure_collector)
    assert len(ids) == 4  # the first, the two kept during the outage, and this one
    assert set(ids.values()) == {1}


@pytest.mark.parametrize("route", ["sync_hello", "async_hello"])
def test_eight_concurrent_invocations_lose_and_duplicate_nothing(
    make_app: MakeApp, azure_collector: Collector, route: str
) -> None:
    app = make_app()
    for _ in range(3):
        results = app.invoke_many([Call(route, hello(route, events=3, sleep_ms=50))] * 8)
        assert [r.status for r in results] == ["success"] * 8, [r.error for r in results]

    stats = azure_collector.stats()
    assert stats["events_stored"] == 3 * 8 * 3
    assert stats["duplicates"] == 0


@pytest.mark.parametrize("route", ["sync_hello", "async_hello"])
def test_eight_concurrent_invocations_each_keep_their_own_timeout_when_the_collector_hangs(
    make_app: MakeApp, azure_collector: Collector, route: str
) -> None:
    # Eight threads for sync functions: a function cannot see the time its invocation waits
    # for a free worker thread (docs/azure.md), and this test is about the flush's budget.
    app = make_app(
        environment={**SHORT_TIMEOUT, **NO_FLUSH_CAP, "PYTHON_THREADPOOL_THREAD_COUNT": "8"}
    )
    assert app.invoke(route, hello(route)).ok
    azure_collector.set_faults({"then": {"action": "hang"}})

    # Each works for a different time, so each flush has a different budget.
    calls = [Call(route, hello(route, events=2, sleep_ms=150 * i)) for i in range(8)]
    results = app.invoke_many(calls)

    assert [r.status for r in results] == ["success"] * 8, [r.error for r in results]
    assert app.timeouts == 0
    assert all(r.margin is not None and r.margin > 0 for r in results)

    azure_collector.clear_faults()
    assert app.invoke(route, hello(route)).ok
    ids = stored_ids(azure_collector)
    assert len(ids) == 1 + 16 + 1
    assert set(ids.values()) == {1}


def test_an_async_flush_leaves_the_event_loop_free(
    make_app: MakeApp, azure_collector: Collector
) -> None:
    app = make_app(environment={**SHORT_TIMEOUT, **NO_FLUSH_CAP})
    assert app.invoke("async_hello", hello("async_hello")).ok
    azure_collector.set_faults({"then": {"action": "hang"}})
    flushing: list[object] = []

    worker = threading.Thread(
        target=lambda: flushing.append(app.invoke("async_hello", hello("async_hello")))
    )
    worker.start()
    time.sleep(0.5)  # the scenario: the first invocation is now in its flush
    pings = [app.invoke("ping", hello("ping")) for _ in range(3)]
    worker.join()

    assert all(p.ok for p in pings)
    # An unwrapped async function on the same loop answers while the flush waits: the
    # loop is not blocked. Tolerance: 0.5 s for a loaded machine, against a 2.75 s flush.
    assert max(p.duration or 99 for p in pings) < 0.5
    assert flushing[0].ok and flushing[0].duration > 2.0  # type: ignore[attr-defined]


def test_a_v1_app_sync_with_context_and_async_without(
    make_app: MakeApp, azure_collector: Collector
) -> None:
    app = make_app(APPS / "v1")
    assert set(app.functions) == {"HttpSync", "HttpAsync", "QueueJob"}

    sync = app.invoke("HttpSync", hello("HttpSync"), invocation_id="inv-v1-sync")
    asynchronous = app.invoke("HttpAsync", hello("HttpAsync"), invocation_id="inv-v1-async")
    queued = app.invoke("QueueJob", queue_message("v1 job"), invocation_id="inv-v1-queue")

    assert sync.ok, sync.error
    assert sync.http_body == b"inv-v1-sync"
    assert asynchronous.ok, asynchronous.error
    assert queued.ok, queued.error
    assert set(stored_ids(azure_collector)) == {
        event_id_from_seed(f"{invocation}:0")
        for invocation in ("inv-v1-sync", "inv-v1-async", "inv-v1-queue")
    }
    loaded = app.describe()
    assert loaded["HttpSync"]["parameters"] == ["req", "context"]
    assert loaded["HttpAsync"]["parameters"] == ["req", "context"]  # asked for by the wrapper
    assert loaded["HttpAsync"]["is_async"] is True


def test_a_v1_app_honours_the_timeout_in_its_host_json(
    make_app: MakeApp, azure_collector: Collector, tmp_path: object
) -> None:
    app = make_app(APPS / "v1", environment={**SHORT_TIMEOUT, **NO_FLUSH_CAP})
    assert app.invoke("HttpAsync", hello("HttpAsync")).ok
    azure_collector.set_faults({"then": {"action": "hang"}})

    result = app.invoke("HttpAsync", hello("HttpAsync", sleep_ms=500))

    assert result.ok, result.error
    assert result.duration is not None and 2.25 < result.duration < 3.0


@pytest.mark.parametrize("route", ["sync_hello", "async_hello"])
def test_logs_only_delivery_sends_nothing_and_its_lines_replay_each_event_once(
    make_app: MakeApp, azure_collector: Collector, route: str, tmp_path: Path
) -> None:
    app = make_app(environment={"DOOW_TRACK_DELIVERY": "logs"})
    results = [app.invoke(route, hello(route, events=2)) for _ in range(3)]

    assert [r.status for r in results] == ["success"] * 3, [r.error for r in results]
    assert azure_collector.stats()["requests"] == 0

    def lines() -> list[str]:
        return [line for line in app.output if '"doow_unsent"' in line]

    assert wait_for(lambda: len(lines()) == 3), lines()
    assert all('"logs-only delivery"' in line for line in lines())
    completed = replay_log(azure_collector, export(lines(), tmp_path / "hub.log"), TEST_KEY)
    assert completed.returncode == 0, completed.stderr
    expected = {event_id_from_seed(f"{r.invocation_id}:{n}") for r in results for n in (0, 1)}
    assert set(stored_ids(azure_collector)) == expected

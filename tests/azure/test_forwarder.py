"""The Azure forwarder (``doow_serverless.forwarders.azure``) under the real library worker.

``examples/azure_forwarder`` (a function app registering the package's blueprint) is
indexed, loaded and invoked by ``azure-functions-runtime`` with an Event Hubs trigger
binding (``cardinality="many"``); the test plays the Functions host, passing batches as
the host does (``azure_local.event_hub_batch``) and retrying a failed one under the
function's retry policy as the host does (``invoke_with_retries``). The events' bodies are
what a diagnostic setting sends for ``FunctionAppLogs`` (``diagnostic_records``), their
lines the output of a real metered app (``apps/v2``) run with its spool off while the
collector refused.
"""

from __future__ import annotations

import uuid

import pytest

from doow_serverless._durability.lines import read_log, unsent_lines
from doow_serverless_dev.azure_local import (
    LocalFunctionApp,
    diagnostic_records,
    event_hub_batch,
    http_request,
)
from doow_serverless_dev.collector import Collector

from .conftest import REPO, TEST_KEY, MakeApp

pytestmark = pytest.mark.timeout(120)

FORWARDER_APP = REPO / "examples" / "azure_forwarder"
FUNCTION = "doow_forwarder"
HUB = {"DOOW_TRACK_EVENT_HUB_NAME": "doow-logs", "DOOW_TRACK_EVENT_HUB_CONNECTION": "unused"}


def forwarder(make_app: MakeApp, **environment: str) -> LocalFunctionApp:
    return make_app(FORWARDER_APP, environment={**HUB, **environment})


def app_log_during_outage(
    make_app: MakeApp, collector: Collector, invocations: int = 3
) -> tuple[list[str], set[str]]:
    """The metered app's log lines while Doow answered 503, and the ids only they hold."""
    app = make_app(environment={"DOOW_TRACK_SPOOL_DIR": "off"})
    collector.set_faults({"then": {"status": 503}})
    try:
        for _ in range(invocations):
            url = "http://localhost/api/sync_hello"
            assert app.invoke("sync_hello", http_request("GET", url, query={"events": "2"})).ok
        app.stop()
    finally:
        collector.clear_faults()
    events = read_log(app.output).unanswered_events()
    ids = {event["event_id"] for event in events if isinstance(event, dict)}
    assert len(ids) == invocations * 2
    assert collector.stats()["events_stored"] == 0
    return list(app.output), ids


def stored(collector: Collector) -> set[str]:
    return {event["event_id"] for event in collector.events(limit=1000)}


def assert_nothing_to_forward_and_no_key(app: LocalFunctionApp) -> None:
    """The forwarder's own log, streamed back by the diagnostic setting, feeds nothing."""
    contents = read_log(app.output)
    assert contents.records == [] and not contents.acknowledged and contents.unreadable == []
    assert not [line for line in app.output if TEST_KEY in line]


def test_the_worker_gives_the_host_the_retry_policy_and_a_batch_trigger(
    make_app: MakeApp,
) -> None:
    app = forwarder(make_app)

    assert app.retry_policy(FUNCTION) == {
        "max_retry_count": -1,  # no end: the checkpoint waits until the batch is delivered
        "retry_strategy": "exponential_backoff",
        "minimum_interval": 10.0,
        "maximum_interval": 900.0,
    }
    (binding,) = app.functions[FUNCTION].metadata["raw_bindings"]
    assert '"cardinality": "MANY"' in binding
    assert '"eventHubName": "%DOOW_TRACK_EVENT_HUB_NAME%"' in binding


def test_a_batch_is_delivered_once_however_often_the_hub_hands_it_over(
    make_app: MakeApp, azure_collector: Collector
) -> None:
    lines, ids = app_log_during_outage(make_app, azure_collector)
    # Records of the whole app (other functions, the host), several events in a batch.
    half = len(lines) // 2
    bodies = [
        diagnostic_records(["Executing 'Functions.other'", *lines[:half]]),
        diagnostic_records([*lines[half:], "Host lock lease acquired"], category="Host.General"),
    ]
    app = forwarder(make_app)

    first = app.invoke(FUNCTION, event_hub_batch(bodies))
    again = app.invoke(FUNCTION, event_hub_batch(bodies))  # at least once, says Azure

    assert first.ok, first.error
    assert again.ok, again.error
    assert stored(azure_collector) == ids
    assert azure_collector.stats()["duplicates"] == len(ids)  # the second time, counted once
    assert_nothing_to_forward_and_no_key(app)


def test_an_acknowledgement_in_another_event_of_the_batch_spares_the_resend(
    make_app: MakeApp, azure_collector: Collector
) -> None:
    source = make_app(environment={"DOOW_TRACK_SPOOL_DIR": "off"})
    url = "http://localhost/api/sync_hello"
    assert source.invoke("sync_hello", http_request("GET", url, query={"events": "2"})).ok
    source.stop()  # its output is read by a thread: all of it is there once it exited
    ahead = [line for line in source.output if "doow_unsent" in line]
    acks = [line for line in source.output if "doow_sent" in line]
    assert len(ahead) == len(acks) == 1
    requests = azure_collector.stats()["requests"]
    app = forwarder(make_app)

    batch = event_hub_batch([diagnostic_records(ahead), diagnostic_records(acks)])

    result = app.invoke(FUNCTION, batch)

    assert result.ok, result.error
    assert azure_collector.stats()["requests"] == requests  # nothing to send


def test_when_doow_fails_the_function_raises_and_the_hosts_retry_delivers_once(
    make_app: MakeApp, azure_collector: Collector
) -> None:
    lines, ids = app_log_during_outage(make_app, azure_collector)
    app = forwarder(make_app)

    def doow_is_back_for_the_second_retry(retry_count: int) -> None:
        if retry_count == 2:
            azure_collector.clear_faults()

    azure_collector.set_faults({"then": {"status": 503}})
    results = app.invoke_with_retries(
        FUNCTION,
        event_hub_batch([diagnostic_records(lines)]),
        attempts=5,
        before_retry=doow_is_back_for_the_second_retry,
    )

    assert [result.status for result in results] == ["failure", "failure", "success"]
    assert "not delivered" in (results[0].error or "")
    assert "ForwardingIncomplete" in (results[0].error or "")
    assert stored(azure_collector) == ids
    assert azure_collector.stats()["duplicates"] == 0


def test_a_hanging_doow_fails_the_function_before_its_timeout(
    make_app: MakeApp, azure_collector: Collector
) -> None:
    lines, _ = app_log_during_outage(make_app, azure_collector, invocations=1)
    app = forwarder(make_app, AzureFunctionsJobHost__functionTimeout="00:00:03")
    assert app.timeout == 3.0

    azure_collector.set_faults({"then": {"action": "hang"}})
    try:
        result = app.invoke(FUNCTION, event_hub_batch([diagnostic_records(lines)]))
    finally:
        azure_collector.clear_faults()

    assert result.status == "failure"  # raised in time, not ended by the host at 3 s
    assert result.margin is not None and result.margin > 0
    assert app.timeouts == 0


def test_malformed_records_are_reported_and_the_rest_delivered(
    make_app: MakeApp, azure_collector: Collector
) -> None:
    lines, ids = app_log_during_outage(make_app, azure_collector, invocations=1)
    cut = unsent_lines(str(uuid.uuid4()), [{"event_id": str(uuid.uuid4())}], "test")[0][:50]
    bodies = [
        diagnostic_records([cut, '{"doow_unsent": "no"}', *lines]),
        b"not json at all, but an event of the hub",
    ]
    app = forwarder(make_app)

    result = app.invoke(FUNCTION, event_hub_batch(bodies))

    # Retrying could not make them readable: the batch succeeds (the count of unreadable
    # lines goes to the function's log, which the worker sends the host, not this test).
    assert result.ok, result.error
    assert stored(azure_collector) == ids

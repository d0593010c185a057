"""The AWS forwarder (``doow_serverless.forwarders.aws.handler``) under the real runtime client.

The SDK's lines come from a real function (``kill_points.handler``, wrapped in
``with_lambda``) run under awslambdaric with its spool off and, where the test says so,
the collector refusing: what it printed is what CloudWatch Logs would hold. Those lines go
to the forwarder as CloudWatch Logs delivers them to a subscription filter's destination:
``{"awslogs": {"data": base64(gzip(JSON))}}`` (``lambda_local.subscription_event``, the
form ``sam local generate-event cloudwatch logs`` prints, kept in
``events/cloudwatch_logs.json``). The forwarder, too, runs under awslambdaric and sends to
the real collector over 127.0.0.1. "Retried" is what Lambda does with a failed
asynchronous invocation: the same event again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from doow_serverless._core.wire import event_id_from_seed
from doow_serverless._durability.envelopes import open_event
from doow_serverless._durability.lines import read_log, unsent_lines
from doow_serverless_dev.collector import Collector
from doow_serverless_dev.lambda_local import (
    LocalFunction,
    control_event,
    dead_letter_export,
    on_failure_export,
    subscription_event,
)

from .conftest import FUNCTIONS_DIR, REPO, TEST_KEY, MakeFunction

pytestmark = pytest.mark.timeout(120)

FORWARDER = "doow_serverless.forwarders.aws.handler"
FORWARDER_DIR = REPO / "examples" / "lambda_forwarder"
SAM_EVENT = Path(__file__).resolve().parent / "events" / "cloudwatch_logs.json"
LOG_GROUP = "/aws/lambda/local-function"


def forwarder(make_function: MakeFunction, timeout: float = 10.0, **env: str) -> LocalFunction:
    return make_function(
        FORWARDER, code_dir=FORWARDER_DIR, timeout=timeout, function_name="forwarder",
        environment=env,
    )  # fmt: skip


def source_function(make_function: MakeFunction) -> LocalFunction:
    """A metered function whose only durable copy of what it tracked is its log."""
    return make_function(
        "kill_points.handler",
        code_dir=FUNCTIONS_DIR,
        environment={"DOOW_TRACK_SPOOL_DIR": "off", "DOOW_TRACK_FLUSH_TIMEOUT": "300"},
    )


def run_during_outage(
    make_function: MakeFunction, collector: Collector, run: str, count: int
) -> list[str]:
    """Invoke the source function while Doow answers 503: its log, as CloudWatch keeps it
    (one log event per line printed)."""
    collector.set_faults({"then": {"status": 503}})
    try:
        function = source_function(make_function)
        result = function.invoke({"run": run, "count": count})
        assert result.ok, result.body
        function.stop()
    finally:
        collector.clear_faults()
    assert collector.stats()["events_stored"] == 0
    return [line + "\n" for line in function.output]


def expected(run: str, count: int) -> set[str]:
    return {event_id_from_seed(f"key:{run}:{n}") for n in range(count)}


def stored(collector: Collector) -> set[str]:
    return {event["event_id"] for event in collector.events(limit=1000)}


def assert_no_markers_and_no_key(output: list[str]) -> None:
    """The forwarder's own log feeds nothing back to a forwarder, and holds no key."""
    contents = read_log(output)
    assert contents.records == [] and not contents.acknowledged and contents.unreadable == []
    assert not [line for line in output if TEST_KEY in line]


# -- the wire form --------------------------------------------------------------------------


def test_the_payload_builder_makes_what_sam_generate_event_prints() -> None:
    sam = json.loads(SAM_EVENT.read_text(encoding="utf-8"))
    ours = subscription_event(["[ERROR] First test message"], log_group="testLogGroup")
    assert set(sam) == set(ours) == {"awslogs"}
    assert set(sam["awslogs"]) == set(ours["awslogs"]) == {"data"}
    theirs, mine = open_event(sam), open_event(ours)
    assert theirs.message_type == mine.message_type == "DATA_MESSAGE"
    assert theirs.messages == ["[ERROR] First test message", "[ERROR] Second test message"]
    assert mine.log_group == theirs.log_group == "testLogGroup"


def test_sams_sample_event_and_a_control_message_succeed_and_send_nothing(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    function = forwarder(make_function)
    sample = function.invoke(SAM_EVENT.read_bytes())
    control = function.invoke(control_event())

    assert sample.ok, sample.body
    assert sample.payload["found"] == 0
    assert control.ok, control.body
    assert control.payload == {"messageType": "CONTROL_MESSAGE"}
    assert lambda_collector.stats()["requests"] == 0
    assert_no_markers_and_no_key(function.output)


# -- delivering --------------------------------------------------------------------------


def test_events_only_the_log_kept_are_delivered_once_however_often_delivered(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    run = f"outage-{uuid.uuid4()}"
    log = run_during_outage(make_function, lambda_collector, run, count=3)
    # The log group also holds lines of other programs, and the runtime's own.
    log = ["START RequestId: 1 Version: $LATEST\n", "INFO something else\n", *log]
    payload = subscription_event([*log, "END RequestId: 1\n"], log_group=LOG_GROUP)
    function = forwarder(make_function)
    connections = lambda_collector.stats()["connections"]  # the source function's

    first = function.invoke(payload)
    again = function.invoke(payload)  # CloudWatch and Lambda may deliver an event twice

    assert first.ok, first.body
    assert first.payload["delivered"] == 3
    assert again.ok, again.body
    assert stored(lambda_collector) == expected(run, 3)
    stats = lambda_collector.stats()
    assert stats["events_stored"] == 3
    assert stats["duplicates"] == 3  # the second delivery: Doow counted each once
    assert stats["connections"] == connections + 1  # kept across the warm invocation
    assert_no_markers_and_no_key(function.output)


def test_on_the_healthy_path_the_acknowledgement_spares_a_resend(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    run = f"healthy-{uuid.uuid4()}"
    source = source_function(make_function)
    assert source.invoke({"run": run, "count": 2}).ok
    source.stop()  # its output is read by a thread: all of it is there once it exited
    log = [line + "\n" for line in source.output]
    ahead = [line for line in log if "doow_unsent" in line]
    acks = [line for line in log if "doow_sent" in line]
    assert len(ahead) == 1 and len(acks) == 1
    requests = lambda_collector.stats()["requests"]
    function = forwarder(make_function)

    together = function.invoke(subscription_event(log))
    assert together.ok, together.body
    assert together.payload["answered"] == 2
    assert lambda_collector.stats()["requests"] == requests  # nothing to send

    # The pipeline cut the batch between the write-ahead line and its acknowledgement:
    # the first delivery sends again (counted once by Doow), the second nothing.
    apart = [function.invoke(subscription_event(ahead)), function.invoke(subscription_event(acks))]
    assert [result.ok for result in apart] == [True, True]
    stats = lambda_collector.stats()
    assert stats["requests"] == requests + 1
    assert stats["duplicates"] == 2
    assert stored(lambda_collector) == expected(run, 2)


def test_lines_of_the_logs_delivery_mode_are_delivered_by_the_forwarder(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    # DOOW_TRACK_DELIVERY=logs: the function sends nothing, the forwarder delivers.
    run = f"logs-mode-{uuid.uuid4()}"
    source = make_function(
        "kill_points.handler", code_dir=FUNCTIONS_DIR, environment={"DOOW_TRACK_DELIVERY": "logs"}
    )
    assert source.invoke({"run": run, "count": 3}).ok
    source.stop()
    assert lambda_collector.stats()["requests"] == 0
    function = forwarder(make_function)

    result = function.invoke(subscription_event([line + "\n" for line in source.output]))

    assert result.ok, result.body
    assert stored(lambda_collector) == expected(run, 3)


def test_malformed_records_are_reported_and_the_rest_delivered(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    run = f"malformed-{uuid.uuid4()}"
    log = run_during_outage(make_function, lambda_collector, run, count=2)
    good = str(uuid.uuid4())
    bad_event = {"event_id": str(uuid.uuid4()), "license_id": "lic_x"}  # no measurements
    records = unsent_lines(str(uuid.uuid4()), [bad_event], "test")
    cut = unsent_lines(str(uuid.uuid4()), [{"event_id": good}], "test")[0][:60]
    messages = [
        *log,
        cut + "\n",  # a record a pipeline cut short
        '{"doow_unsent": 5}\n',  # the marker, but not a record
        "a word like doow_unsent in another program's line\n",
        *(line + "\n" for line in records),
    ]
    function = forwarder(make_function)

    result = function.invoke(subscription_event(messages))

    # Retrying could not make any of those readable: the invocation succeeds, says so.
    assert result.ok, result.body
    assert result.payload["delivered"] == 2
    assert result.payload["invalid"] == 3  # the cut record, the non-record, the bad event
    assert stored(lambda_collector) == expected(run, 2)
    assert any("3 unreadable" in line for line in function.output)


@pytest.mark.parametrize(
    "event",
    [
        {"hello": "world"},
        {"awslogs": {"data": "not base64 at all!"}},
        {"awslogs": {"data": "aGVsbG8="}},  # base64 of "hello", not gzip
    ],
    ids=["not-a-subscription", "not-base64", "not-gzip"],
)
def test_an_event_that_is_not_a_subscription_payload_fails_where_someone_sees_it(
    make_function: MakeFunction, event: dict[str, Any]
) -> None:
    result = forwarder(make_function).invoke(event)

    assert result.status == "error"
    assert result.error_type == "NotASubscription"


def test_oversized_deliveries_go_in_several_batches_each_event_once(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    run = f"big-{uuid.uuid4()}"
    log = run_during_outage(make_function, lambda_collector, run, count=1100)
    lines = [line for line in log if "doow_unsent" in line]
    assert len(lines) >= 4  # the SDK keeps each line under 60 KB
    function = forwarder(make_function)

    result = function.invoke(subscription_event(log))

    assert result.ok, result.body
    stats = lambda_collector.stats()
    assert stats["events_stored"] == 1100
    assert stats["duplicates"] == 0
    assert stats["requests"] >= 3  # at most 500 events a request
    assert stored(lambda_collector) <= expected(run, 1100)


# -- failing, and being retried ----------------------------------------------------------------


def test_an_endpoint_that_fails_fails_the_invocation_and_the_retry_delivers_once(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    run = f"retried-{uuid.uuid4()}"
    log = run_during_outage(make_function, lambda_collector, run, count=1100)
    payload = subscription_event(log)
    function = forwarder(make_function)

    # Doow takes the first batch, then is down for the rest of this invocation.
    lambda_collector.set_faults({"script": [{"action": "accept"}], "then": {"status": 503}})
    failed = function.invoke(payload)
    lambda_collector.clear_faults()
    retried = function.invoke(payload)  # Lambda's retry: the same event again

    assert failed.status == "error"  # not a timeout: it answered, failing, in time
    assert failed.error_type == "ForwardingIncomplete"
    assert failed.margin is not None and failed.margin > 0
    assert "600 event(s) not delivered" in failed.payload["errorMessage"]
    assert retried.ok, retried.body
    stats = lambda_collector.stats()
    assert stats["events_stored"] == 1100
    assert stats["duplicates"] == 500  # the first batch, sent again: counted once
    assert_no_markers_and_no_key(function.output)


def test_a_hanging_endpoint_fails_the_invocation_before_its_deadline(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    run = f"hang-{uuid.uuid4()}"
    log = run_during_outage(make_function, lambda_collector, run, count=2)
    function = forwarder(make_function, timeout=2.0)

    lambda_collector.set_faults({"then": {"action": "hang"}})
    try:
        result = function.invoke(subscription_event(log))
    finally:
        lambda_collector.clear_faults()

    assert result.status == "error", result.body
    assert result.error_type == "ForwardingIncomplete"
    assert result.margin is not None and 0 < result.margin < 1.5
    assert function.kills == 0


def test_without_a_key_the_invocation_fails_and_says_why(make_function: MakeFunction) -> None:
    function = forwarder(make_function, DOOW_TRACK_API_KEY="")

    result = function.invoke(subscription_event(['{"doow_unsent":{"events":[]}}\n']))

    assert result.status == "error"
    assert result.error_type == "ForwardingIncomplete"
    assert "DOOW_TRACK_API_KEY" in result.payload["errorMessage"]


@pytest.mark.parametrize("kept_by", ["dead-letter-queue", "on-failure-destination"])
def test_what_lambda_kept_after_the_retries_is_replayed_from_the_queue(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path, kept_by: str
) -> None:
    run = f"dlq-{uuid.uuid4()}"
    log = run_during_outage(make_function, lambda_collector, run, count=3)
    payload = subscription_event(log)
    lambda_collector.set_faults({"then": {"status": 503}})
    try:
        attempts = [forwarder(make_function).invoke(payload) for _ in range(3)]
    finally:
        lambda_collector.clear_faults()
    assert [attempt.status for attempt in attempts] == ["error"] * 3
    # After its retries Lambda keeps the event; `aws sqs receive-message --output json`:
    export = dead_letter_export if kept_by == "dead-letter-queue" else on_failure_export
    queue = tmp_path / "queue.json"
    queue.write_text(json.dumps(export([payload]), indent=2), encoding="utf-8")

    for _ in range(2):
        replayed = subprocess.run(
            [sys.executable, "-m", "doow_serverless", "replay", "--log", str(queue)],
            env={**os.environ, "DOOW_TRACK_API_KEY": TEST_KEY,
                 "DOOW_TRACK_ENDPOINT": lambda_collector.url},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert replayed.returncode == 0, replayed.stderr

    assert stored(lambda_collector) == expected(run, 3)
    assert lambda_collector.stats()["duplicates"] == 3  # the second replay, counted once

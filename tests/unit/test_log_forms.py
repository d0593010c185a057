"""``replay --log`` reads every record in every form a platform's logs can be exported in.

The SDK writes one line per record; a log pipeline may prefix it, join several on one line,
wrap it in JSON (once or twice), put several in one message, or quote it in CSV. Each form
below is built the way the tool that makes it builds it (AWS CLI text and JSON output,
Logs Insights results, Lambda's JSON log records, Vercel log drains and ``vercel logs
--json``, Azure diagnostic settings, Application Insights and Log Analytics queries, a CSV
download; a CloudWatch Logs subscription payload as the AWS forwarder is invoked with it,
and as Lambda keeps it after the forwarder failed: an SQS dead-letter queue's messages, an
on-failure destination's records), and must give back every event, each once, and no event
of a line answered for.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from doow_serverless._durability.lines import ack_lines, read_log, unsent_lines
from doow_serverless_dev.lambda_local import (
    dead_letter_export,
    on_failure_export,
    subscription_event,
)

Lines = list[str]


def document(n: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "license_id": "lic_forms",
        "occurred_at": "2026-12-04T00:00:00.000Z",
        "source_system": "sdk",
        "kind": "USAGE",
        "unit": "tokens",
        "attribution": {"note": 'quote " tab \t café 😀 doow_unsent'},
        "measurements": [{"metric_name": "tokens", "quantity": n + 1}],
    }


def sdk_output() -> tuple[Lines, list[dict[str, Any]], set[str]]:
    """What a function printed: a batch of 2, a batch of 3, and a batch of 1 that was then
    answered for; the events to recover (the 5) and the answered batch's event ids."""
    pending = [[document(n) for n in range(2)], [document(n) for n in range(3)]]
    answered = [document(9)]
    lines: Lines = []
    for batch in pending:
        lines += unsent_lines(str(uuid.uuid4()), batch, "HTTP 503")
    answered_id = str(uuid.uuid4())
    lines += unsent_lines(answered_id, answered, "kept before sending (write-ahead)")
    lines += ack_lines([answered_id])
    return lines, [event for batch in pending for event in batch], {answered[0]["event_id"]}


def cloudwatch_text(lines: Lines) -> str:
    # `aws logs filter-log-events --query 'events[].message' --output text`: each page is
    # one line of tab-separated messages; a Lambda message ends with its newline.
    pages = [lines[:2], lines[2:]]
    return "".join("\t".join(line + "\n" for line in page) + "\n" for page in pages)


def cloudwatch_json(lines: Lines) -> str:
    # `aws logs filter-log-events --output json`
    events = [
        {
            "logStreamName": "2026/12/04/[$LATEST]abc",
            "timestamp": 1764806400000 + n,
            "message": f"2026-12-04T00:00:00.000Z\t{uuid.uuid4()}\tINFO\t{line}\n",
            "ingestionTime": 1764806400100,
            "eventId": str(n),
        }
        for n, line in enumerate(lines)
    ]
    return json.dumps({"events": events, "searchedLogStreams": []}, indent=4, ensure_ascii=False)


def cloudwatch_json_messages(lines: Lines) -> str:
    # `... --query 'events[].message' --output json`
    return json.dumps([line + "\n" for line in lines], indent=4, ensure_ascii=False)


def logs_insights(lines: Lines) -> str:
    # `aws logs get-query-results` of `fields @timestamp, @message | filter ...`
    results = [
        [
            {"field": "@timestamp", "value": "2026-12-04 00:00:00.000"},
            {"field": "@message", "value": line},
            {"field": "@ptr", "value": "CmAKJwoj"},
        ]
        for line in lines
    ]
    return json.dumps({"results": results, "status": "Complete"}, indent=4)


def lambda_json_records(lines: Lines) -> str:
    # Lambda's JSON log format (always on with Managed Instances): records with "message".
    return "".join(
        json.dumps(
            {
                "timestamp": "2026-12-04T00:00:00Z",
                "level": "INFO",
                "message": line,
                "requestId": str(uuid.uuid4()),
            }
        )
        + "\n"
        for line in lines
    )


def vercel_drain_json(lines: Lines) -> str:
    # A Log Drain delivery in JSON: an array of entries; one write may hold several lines.
    return json.dumps(
        [
            {
                "id": str(uuid.uuid4()),
                "message": "\n".join(lines[:2]) + "\n",
                "source": "lambda",
                "type": "stdout",
            },
            *({"id": str(uuid.uuid4()), "message": line, "source": "lambda"} for line in lines[2:]),
        ]
    )


def vercel_drain_ndjson(lines: Lines) -> str:
    return "".join(
        json.dumps({"id": str(uuid.uuid4()), "message": line, "level": "info"}) + "\n"
        for line in lines
    )


def vercel_logs_json(lines: Lines) -> str:
    # `vercel logs --json`: one object per request; every line of it in "logs".
    return (
        json.dumps(
            {
                "id": str(uuid.uuid4()),
                "message": lines[0],
                "requestPath": "/api",
                "logs": [{"level": "info", "message": line} for line in lines],
            }
        )
        + "\n"
    )


def azure_event_hub(lines: Lines) -> str:
    # A diagnostic setting's Event Hub message: {"records": [...]} of FunctionAppLogs.
    records = [
        {
            "time": "2026-12-04T00:00:00Z",
            "category": "FunctionAppLogs",
            "properties": {"message": line, "category": "Host.Function.Console"},
        }
        for line in lines
    ]
    return json.dumps({"records": records}) + "\n"


def cloudwatch_subscriptions(lines: Lines) -> str:
    # The events a forwarder is invoked with, one a line (two deliveries, each a batch of
    # log events; a Lambda text-format message ends with its newline).
    deliveries = [lines[:2], lines[2:]]
    return "".join(
        json.dumps(subscription_event([line + "\n" for line in part])) + "\n" for part in deliveries
    )


def dead_letter_queue(lines: Lines) -> str:
    # `aws sqs receive-message --output json` of the forwarder's DLQ: the events as bodies.
    events = [subscription_event(lines[:2]), subscription_event(lines[2:])]
    return json.dumps(dead_letter_export(events), indent=2)


def on_failure_destination(lines: Lines) -> str:
    # The same of an SQS on-failure destination: invocation records, the event inside.
    events = [subscription_event(lines[:3]), subscription_event(lines[3:])]
    return json.dumps(on_failure_export(events), indent=2)


def app_insights_query(lines: Lines) -> str:
    # `az monitor app-insights query --analytics-query "traces | ... | project message"`
    table = {
        "name": "PrimaryResult",
        "columns": [{"name": "message", "type": "string"}],
        "rows": [[line] for line in lines],
    }
    return json.dumps({"tables": [table]}, indent=2)


def log_analytics_query(lines: Lines) -> str:
    # `az monitor log-analytics query`: rows flattened, every value a string.
    return json.dumps([{"TableName": "PrimaryResult", "message": line} for line in lines])


def csv_download(lines: Lines) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["timestamp", "message"])
    for line in lines:
        writer.writerow(["2026-12-04T00:00:00Z", line])
    return out.getvalue()


FORMS: dict[str, Callable[[Lines], str]] = {
    "plain": lambda lines: "".join(line + "\n" for line in lines),
    "cloudwatch-text": cloudwatch_text,
    "cloudwatch-json": cloudwatch_json,
    "cloudwatch-json-messages": cloudwatch_json_messages,
    "logs-insights": logs_insights,
    "lambda-json-records": lambda_json_records,
    "vercel-drain-json": vercel_drain_json,
    "vercel-drain-ndjson": vercel_drain_ndjson,
    "vercel-logs-json": vercel_logs_json,
    "azure-event-hub": azure_event_hub,
    "app-insights-query": app_insights_query,
    "log-analytics-query": log_analytics_query,
    "csv": csv_download,
    "cloudwatch-subscription": cloudwatch_subscriptions,
    "lambda-dead-letter-queue": dead_letter_queue,
    "lambda-on-failure-destination": on_failure_destination,
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_record_is_read_once_and_answered_ones_are_left_out(form: str) -> None:
    lines, pending, answered = sdk_output()
    exported = FORMS[form](lines)
    contents = read_log(exported.splitlines())
    assert contents.unreadable == []
    events = contents.unanswered_events()
    assert events == pending
    assert answered.isdisjoint(event["event_id"] for event in events if isinstance(event, dict))


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_record_cut_short_is_counted_not_skipped_silently(form: str) -> None:
    lines, pending, _ = sdk_output()
    cut = lines[0][: len(lines[0]) // 2]  # a log pipeline cut the first record
    exported = FORMS[form]([cut, *lines[1:]])
    contents = read_log(exported.splitlines())
    assert len(contents.unreadable) >= 1
    assert contents.unanswered_events() == pending[2:]  # the other records are all there


def test_several_records_in_one_message_are_all_read() -> None:
    lines, pending, _ = sdk_output()
    message = json.dumps({"message": "".join(line + "\n" for line in lines[:2])})
    assert read_log([message]).unanswered_events() == pending


def test_a_record_escaped_twice_is_read() -> None:
    lines, pending, _ = sdk_output()
    wrapped = [json.dumps({"message": json.dumps({"message": line})}) for line in lines[:2]]
    assert read_log(wrapped).unanswered_events() == pending

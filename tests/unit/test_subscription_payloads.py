"""A log's lines as the deliveries CloudWatch Logs makes of them to a subscription filter's
Lambda destination (``lambda_local.subscription_events``): the wire form, opened by hand
(base64, then gzip, then JSON), every line once and in order, and each delivery within
AWS's limits (10,000 log events and 1,048,576 bytes of messages, 26 bytes counted for each,
in a ``PutLogEvents`` batch; an asynchronous invocation's event under 256 KB).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from typing import Any

from doow_serverless._durability.envelopes import open_event
from doow_serverless_dev.lambda_local import subscription_events
from doow_serverless_dev.lambda_local._logs import (
    EVENT_OVERHEAD_BYTES,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
)

STREAM = "2026/12/04/[$LATEST]0123456789abcdef0123456789abcdef"


def opened(event: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of a delivery, opened without the library's reader."""
    assert set(event) == {"awslogs"} and set(event["awslogs"]) == {"data"}
    document = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    assert isinstance(document, dict)
    return document


def messages_of(events: list[dict[str, Any]]) -> list[str]:
    return [entry["message"] for event in events for entry in opened(event)["logEvents"]]


def batch_bytes(document: dict[str, Any]) -> int:
    return sum(
        len(entry["message"].encode()) + EVENT_OVERHEAD_BYTES for entry in document["logEvents"]
    )


def test_each_delivery_is_the_wire_form_every_line_once_in_order() -> None:
    lines = [f"line {n} é\n" for n in range(25)]

    events = subscription_events(
        lines, counts=[1, 2, 10], log_group="/aws/lambda/fn", log_stream=STREAM, timestamp_ms=7
    )

    documents = [opened(event) for event in events]
    # Several log events to a delivery, at most as many as each count said, then the rest.
    assert [len(document["logEvents"]) for document in documents] == [1, 2, 10, 12]
    assert messages_of(events) == lines
    for document in documents:
        assert document["messageType"] == "DATA_MESSAGE"
        assert document["logGroup"] == "/aws/lambda/fn"
        assert document["logStream"] == STREAM
        assert document["subscriptionFilters"] and document["owner"]
    entries = [entry for document in documents for entry in document["logEvents"]]
    timestamps = [entry["timestamp"] for entry in entries]
    assert timestamps == sorted(timestamps) and len(set(timestamps)) == len(entries)
    assert timestamps[0] == 7
    assert len({entry["id"] for entry in entries}) == len(entries)
    # The library's reader opens the same thing.
    assert [open_event(event).messages for event in events][1] == lines[1:3]


def test_no_delivery_holds_more_than_a_put_log_events_batch() -> None:
    # Compressible lines: the event stays small, the messages' bytes are what limits.
    big = ["a" * 200_000 + "\n" for _ in range(12)]
    many = ["x\n"] * (MAX_BATCH_EVENTS * 2 + 5)

    by_bytes = subscription_events(big)
    by_count = subscription_events(many)

    assert len(by_bytes) > 1
    assert all(batch_bytes(opened(event)) <= MAX_BATCH_BYTES for event in by_bytes)
    assert messages_of(by_bytes) == big
    assert [len(opened(event)["logEvents"]) for event in by_count] == [
        MAX_BATCH_EVENTS,
        MAX_BATCH_EVENTS,
        5,
    ]


def test_every_delivery_fits_an_asynchronous_invocation() -> None:
    # Lines that hardly compress (as the SDK's ids and timestamps partly do not).
    lines = [os.urandom(20_000).hex() + "\n" for _ in range(40)]  # 1.6 MB of messages

    events = subscription_events(lines)

    sizes = [len(json.dumps(event)) for event in events]
    assert len(events) > 2
    assert max(sizes) <= MAX_EVENT_BYTES
    assert messages_of(events) == lines


def test_a_line_too_large_for_any_delivery_goes_alone() -> None:
    lines = ["short\n", os.urandom(150_000).hex() + "\n", "after\n"]

    events = subscription_events(lines, max_event_bytes=64 * 1024)

    assert [len(opened(event)["logEvents"]) for event in events] == [1, 1, 1]
    assert messages_of(events) == lines


def test_no_lines_no_deliveries() -> None:
    assert subscription_events([]) == []

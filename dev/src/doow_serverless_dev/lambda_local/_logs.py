"""CloudWatch Logs' side of a subscription filter, and where Lambda keeps a failed event.

What a Lambda function subscribed to a log group is invoked with, built as CloudWatch
Logs builds it (and as ``sam local generate-event cloudwatch logs`` prints it): the log
events in ``{"awslogs": {"data": base64(gzip(JSON))}}``. And the forms a failed
asynchronous invocation's event takes afterwards: the message body of an SQS dead-letter
queue (the event as it is, with ``RequestID``, ``ErrorCode`` and ``ErrorMessage``
attributes), and the invocation record an on-failure destination receives (the event as
``requestPayload``), each as ``aws sqs receive-message --output json`` prints it.

A log's worth of lines goes in several deliveries (:func:`subscription_events`), each
within what AWS allows one to hold: CloudWatch Logs takes at most 10,000 log events and
1,048,576 bytes (every message's UTF-8 plus 26 bytes) in one ``PutLogEvents`` batch (its
API reference), and a Lambda destination is invoked asynchronously, whose event was
limited to 256 KB (Lambda quotas; 1 MB since October 2025): a delivery kept under 256 KB
fits either limit, and an SQS dead-letter queue's message (256 KiB before the same change).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import itertools
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

DATA_MESSAGE = "DATA_MESSAGE"
CONTROL_MESSAGE = "CONTROL_MESSAGE"

_event_ids = itertools.count(1)

# What one delivery may hold (see the module's docstring).
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
MAX_EVENT_BYTES = 256 * 1024  # the event a Lambda destination is invoked with, as JSON


def subscription_event(
    messages: Sequence[str],
    *,
    log_group: str = "/aws/lambda/local-function",
    log_stream: str = "2026/12/04/[$LATEST]0123456789abcdef0123456789abcdef",
    owner: str = "000000000000",
    filter_name: str = "doow-forwarder",
    message_type: str = DATA_MESSAGE,
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """The event a subscription filter's Lambda destination receives for ``messages``."""
    start = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    document = {
        "messageType": message_type,
        "owner": owner,
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": [filter_name],
        "logEvents": [
            {
                # CloudWatch's ids are 56-digit strings; any unique string serves here.
                "id": f"{next(_event_ids):056d}",
                "timestamp": start + n,
                "message": message,
            }
            for n, message in enumerate(messages)
        ],
    }
    return envelope(json.dumps(document, separators=(",", ":")).encode())


def subscription_events(
    messages: Sequence[str],
    *,
    counts: Iterable[int] = (),
    log_group: str = "/aws/lambda/local-function",
    log_stream: str = "2026/12/04/[$LATEST]0123456789abcdef0123456789abcdef",
    timestamp_ms: int | None = None,
    max_event_bytes: int = MAX_EVENT_BYTES,
) -> list[dict[str, Any]]:
    """``messages`` (one log stream's, in order) as the deliveries CloudWatch Logs makes of
    them: in order, every message once, each delivery within the limits above.

    ``counts``: how many messages each delivery may hold at most, in turn (CloudWatch
    delivers what it ingested in a moment, so where a delivery ends depends on when the
    lines were written); once it is exhausted, as many as the limits allow. A single
    message too large for ``max_event_bytes`` goes alone.
    """
    start = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms

    def fit(begin: int, end: int) -> list[dict[str, Any]]:
        """``messages[begin:end]`` in one delivery, or in halves until each fits."""
        event = subscription_event(
            messages[begin:end], log_group=log_group, log_stream=log_stream,
            timestamp_ms=start + begin,
        )  # fmt: skip
        if end - begin == 1 or len(json.dumps(event)) <= max_event_bytes:
            return [event]
        middle = (begin + end) // 2
        return [*fit(begin, middle), *fit(middle, end)]

    wanted = iter(counts)
    deliveries: list[dict[str, Any]] = []
    position = 0
    while position < len(messages):
        most = max(1, min(next(wanted, MAX_BATCH_EVENTS), MAX_BATCH_EVENTS))
        end, size = position, 0
        while end < len(messages) and end - position < most:
            size += len(messages[end].encode()) + EVENT_OVERHEAD_BYTES
            if end > position and size > MAX_BATCH_BYTES:
                break
            end += 1
        deliveries += fit(position, end)
        position = end
    return deliveries


def control_event() -> dict[str, Any]:
    """The message CloudWatch Logs sends to check that a destination is reachable."""
    document = {
        "messageType": CONTROL_MESSAGE,
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {
                "id": "",
                "timestamp": int(time.time() * 1000),
                "message": "CWL CONTROL MESSAGE: Checking health of destination Lambda.",
            }
        ],
    }
    return envelope(json.dumps(document).encode())


def envelope(payload: bytes) -> dict[str, Any]:
    """``payload`` (the JSON document) as the awslogs envelope: base64 of gzip."""
    return {"awslogs": {"data": base64.b64encode(gzip.compress(payload)).decode("ascii")}}


def dead_letter_export(
    events: Sequence[dict[str, Any]], *, error_message: str = "function error"
) -> dict[str, Any]:
    """``aws sqs receive-message --output json`` of a function's SQS dead-letter queue
    holding ``events``: each body is the event as the function was invoked with it."""
    messages = []
    for event in events:
        body = json.dumps(event)
        messages.append(
            {
                "MessageId": str(uuid.uuid4()),
                "ReceiptHandle": base64.b64encode(uuid.uuid4().bytes).decode("ascii"),
                "MD5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "Body": body,
                "MessageAttributes": {
                    "RequestID": {"StringValue": str(uuid.uuid4()), "DataType": "String"},
                    "ErrorCode": {"StringValue": "200", "DataType": "Number"},
                    "ErrorMessage": {"StringValue": error_message[:1024], "DataType": "String"},
                },
            }
        )
    return {"Messages": messages}


def on_failure_export(
    events: Sequence[dict[str, Any]],
    *,
    function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:forwarder:$LATEST",
    error_type: str = "ForwardingIncomplete",
    error_message: str = "function error",
) -> dict[str, Any]:
    """``aws sqs receive-message --output json`` of an SQS on-failure destination: each
    body is Lambda's invocation record, the event in ``requestPayload``."""
    records = [
        {
            "version": "1.0",
            "timestamp": "2026-12-04T00:00:00.000Z",
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": function_arn,
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {"errorMessage": error_message, "errorType": error_type},
        }
        for event in events
    ]
    return {
        "Messages": [
            {"MessageId": str(uuid.uuid4()), "Body": json.dumps(record)} for record in records
        ]
    }

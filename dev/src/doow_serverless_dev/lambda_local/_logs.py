"""CloudWatch Logs' side of a subscription filter, and where Lambda keeps a failed event.

What a Lambda function subscribed to a log group is invoked with, built as CloudWatch
Logs builds it (and as ``sam local generate-event cloudwatch logs`` prints it): the log
events in ``{"awslogs": {"data": base64(gzip(JSON))}}``. And the forms a failed
asynchronous invocation's event takes afterwards: the message body of an SQS dead-letter
queue (the event as it is, with ``RequestID``, ``ErrorCode`` and ``ErrorMessage``
attributes), and the invocation record an on-failure destination receives (the event as
``requestPayload``), each as ``aws sqs receive-message --output json`` prints it.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import itertools
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

DATA_MESSAGE = "DATA_MESSAGE"
CONTROL_MESSAGE = "CONTROL_MESSAGE"

_event_ids = itertools.count(1)


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

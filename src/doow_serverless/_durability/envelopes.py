"""The compressed envelopes a log pipeline wraps log events in, opened.

CloudWatch Logs gives a subscription filter's destination the matching log events as
``{"awslogs": {"data": base64(gzip(JSON))}}``, the JSON being::

    {"messageType": "DATA_MESSAGE" | "CONTROL_MESSAGE", "owner": "…", "logGroup": "…",
     "logStream": "…", "subscriptionFilters": ["…"],
     "logEvents": [{"id": "…", "timestamp": 1733270400000, "message": "…"}, …]}

A Lambda destination receives that object as its event; when the invocation fails for
good, Lambda keeps it in a dead-letter queue (the SQS message body is the event) or sends
it to an on-failure destination (as ``requestPayload`` of the record). Every one of those
forms, however it is exported (escaped in JSON once more, say), is found here, so the
SDK's lines inside can be read by ``lines.read_log`` like any other log.

Opening is bounded: a payload that inflates past ``MAX_INFLATED_BYTES`` is refused, not
inflated (CloudWatch's own batches stay near 1 MB).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Iterator
from typing import NamedTuple

# The key of the envelope, and how a line that may hold one is recognised.
AWSLOGS_KEY = "awslogs"
DATA_MESSAGE = "DATA_MESSAGE"
CONTROL_MESSAGE = "CONTROL_MESSAGE"
MAX_INFLATED_BYTES = 64 * 1024 * 1024

# The data string of an envelope, escaped in JSON any number of times (quotes as \" or
# \\\", and "/" possibly as \/): a gzip stream in base64 starts with "H4sI".
_DATA = re.compile(r'\\*"data\\*"\s*:\s*\\*"(H4sI(?:[A-Za-z0-9+/=]|\\+/)*)')


class EnvelopeError(ValueError):
    """An envelope that cannot be opened; the message says why, never what it holds."""


class Subscription(NamedTuple):
    """One CloudWatch Logs subscription delivery, opened."""

    message_type: str
    log_group: str
    log_stream: str
    messages: list[str]  # the log events' messages, in order

    @property
    def is_control(self) -> bool:
        """CloudWatch checking that the destination is reachable: no log events to read."""
        return self.message_type == CONTROL_MESSAGE


def gunzip(data: bytes, limit: int = MAX_INFLATED_BYTES) -> bytes:
    """``data`` inflated (gzip), refused past ``limit`` bytes."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        inflated = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise EnvelopeError(f"not a gzip stream ({exc})") from None
    if len(inflated) > limit or inflater.unconsumed_tail:
        raise EnvelopeError(f"inflates past {limit} bytes")
    if not inflater.eof:
        raise EnvelopeError("the gzip stream is cut short")
    return inflated


def open_awslogs(data: object) -> Subscription:
    """The delivery in ``data``, the envelope's base64 string."""
    if not isinstance(data, str):
        raise EnvelopeError("awslogs.data is not a string")
    try:
        compressed = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("awslogs.data is not base64") from None
    payload = gunzip(compressed)
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):
        raise EnvelopeError("the inflated payload is not JSON") from None
    if not isinstance(document, dict):
        raise EnvelopeError("the inflated payload is not a JSON object")
    message_type = document.get("messageType")
    events = document.get("logEvents")
    if not isinstance(message_type, str) or not isinstance(events, list):
        raise EnvelopeError("the payload has no messageType or logEvents")
    messages = []
    for event in events:
        message = event.get("message") if isinstance(event, dict) else None
        if not isinstance(message, str):
            raise EnvelopeError("a log event has no message")
        messages.append(message)
    return Subscription(
        message_type,
        str(document.get("logGroup") or ""),
        str(document.get("logStream") or ""),
        messages,
    )


def open_event(event: object) -> Subscription:
    """The delivery a Lambda function was invoked with (``{"awslogs": {"data": …}}``)."""
    envelope = event.get(AWSLOGS_KEY) if isinstance(event, dict) else None
    if not isinstance(envelope, dict):
        raise EnvelopeError("not a CloudWatch Logs subscription event (no awslogs object)")
    return open_awslogs(envelope.get("data"))


def find_awslogs(text: str) -> Iterator[Subscription | EnvelopeError]:
    """Every envelope in ``text`` (a line of an export), opened, or why it could not be."""
    if AWSLOGS_KEY not in text:
        return
    for match in _DATA.finditer(text):
        data = re.sub(r"\\+/", "/", match.group(1))
        try:
            yield open_awslogs(data)
        except EnvelopeError as exc:
            yield exc

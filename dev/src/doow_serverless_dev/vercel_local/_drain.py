"""Vercel's side of a Log Drain: deliveries of log entries, signed as Vercel signs them.

A delivery is a POST whose body is a JSON array of log entries, or NDJSON (one entry a
line), gzip-compressed when the drain is set so; ``x-vercel-signature`` is the hex
HMAC-SHA1 of the body with the drain's secret. Entries carry the fields of Vercel's Log
Drains reference (``id``, ``deploymentId``, ``source``, ``host``, ``timestamp``,
``projectId``, ``level``, ``message``, ...).
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

_ids = itertools.count(1)


class DrainDelivery(NamedTuple):
    body: bytes
    headers: dict[str, str]


def drain_entries(messages: Sequence[str], *, source: str = "lambda") -> list[dict[str, Any]]:
    """One log entry per message, as a Log Drain delivers a function's log."""
    now = int(time.time() * 1000)
    return [
        {
            "id": f"{now}{next(_ids):012d}",
            "deploymentId": "dpl_local",
            "projectId": "prj_local",
            "source": source,
            "host": "local.vercel.app",
            "timestamp": now + n,
            "level": "info",
            "type": "stdout",
            "message": message,
            "requestId": "local-request",
            "environment": "production",
        }
        for n, message in enumerate(messages)
    ]


def drain_delivery(
    entries: Sequence[dict[str, Any]],
    *,
    secret: str | None,
    encoding: str = "json",
    compress: bool = False,
    sign_inflated: bool = False,
) -> DrainDelivery:
    """The request of one delivery: ``encoding`` "json" (an array) or "ndjson"; signed with
    ``secret`` (None: unsigned) over the body as sent, or over the inflated body."""
    if encoding == "json":
        text = json.dumps(list(entries))
    elif encoding == "ndjson":
        text = "".join(json.dumps(entry) + "\n" for entry in entries)
    else:
        raise ValueError(f"encoding must be json or ndjson, got {encoding!r}")
    raw = text.encode()
    body = gzip.compress(raw) if compress else raw
    headers = {"content-type": "application/json" if encoding == "json" else "application/x-ndjson"}
    if compress:
        headers["content-encoding"] = "gzip"
    if secret is not None:
        signed = raw if sign_inflated else body
        headers["x-vercel-signature"] = sign(secret, signed)
    return DrainDelivery(body, headers)


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()

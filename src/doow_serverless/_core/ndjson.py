"""One usage event per line of newline-delimited JSON, as the official CLI reads it.

``send`` (pipe mode) and the daemon (lines over TCP, a followed file) read lines the same
way: a JSON object with ``metric``, ``quantity`` and ``license_id``, and optionally the
other fields of ``track()``.
"""

from __future__ import annotations

import json
from typing import Any

# The fields a line may carry, mapped to the tracker's argument names.
EVENT_FIELDS = {
    "metric": "metric",
    "quantity": "quantity",
    "license_id": "license_id",
    "unit": "unit",
    "attribution": "attribution",
    "metadata": "metadata",
    "kind": "kind",
    "timestamp": "timestamp",
    "occurred_at": "timestamp",
    "event_id": "event_id",
    "idempotency_key": "idempotency_key",
    "source_system": "source_system",
}
REQUIRED_FIELDS = ("metric", "quantity", "license_id")


def read_line(line: str | bytes) -> dict[str, Any] | str:
    """The line's fields under the tracker's argument names, or why the line is malformed."""
    try:
        document = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return f"malformed JSON ({exc})"
    if not isinstance(document, dict):
        return f"must be a JSON object, got {type(document).__name__}"
    unknown = sorted(set(document) - set(EVENT_FIELDS))
    if unknown:
        return f"unknown field(s) {', '.join(map(repr, unknown))}"
    missing = [name for name in REQUIRED_FIELDS if name not in document]
    if missing:
        return f"missing {', '.join(missing)}"
    return {EVENT_FIELDS[name]: value for name, value in document.items()}

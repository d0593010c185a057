"""An NDJSON line as an event document, for the inputs that take lines (TCP, followed files).

A line is read as ``send`` reads it (:mod:`.._core.ndjson`), then becomes the document the
tracker would have sent: the daemon's ``attribution`` under the line's own, the time of
reading when the line gives none. Its id is the line's ``event_id``, else derived from its
``idempotency_key`` as the tracker derives it, else from ``id_seed`` (a followed file
gives the line's place in it, so reading the line again names the same event), else new.
The intake then checks the document as Doow would.
"""

from __future__ import annotations

import time
from typing import Any

from .._core.constants import KIND_USAGE
from .._core.errors import DoowValidationError
from .._core.events import Attribution, QueuedEvent, attribution_problem, parse_timestamp
from .._core.ndjson import read_line
from .._core.wire import (
    IDEMPOTENCY_SEED_PREFIX,
    event_document,
    event_id_from_seed,
    new_random_id,
)


def line_document(
    line: str | bytes, attribution: Attribution | None, id_seed: str | None = None
) -> dict[str, Any] | str:
    """The event document of one line, or why the line is malformed."""
    fields = read_line(line)
    if isinstance(fields, str):
        return fields
    key = fields.get("idempotency_key")
    if "event_id" in fields:
        event_id = fields["event_id"]
    elif key is not None:
        if not isinstance(key, str) or not key:
            return "idempotency_key: must be a non-empty string when given"
        event_id = event_id_from_seed(IDEMPOTENCY_SEED_PREFIX + key)
    else:
        event_id = new_random_id() if id_seed is None else event_id_from_seed(id_seed)
    own = fields.get("attribution")
    if own is not None and (problem := attribution_problem(own)) is not None:
        return f"attribution: {problem}"
    timestamp = fields.get("timestamp")
    try:
        occurred_at = time.time() if timestamp is None else parse_timestamp(timestamp)
    except DoowValidationError as exc:
        return str(exc)
    event = QueuedEvent(
        metric=fields["metric"],
        quantity=fields["quantity"],
        license_id=fields["license_id"],
        unit=fields.get("unit"),
        kind=fields.get("kind", KIND_USAGE),
        occurred_at=occurred_at,
        attribution=own or None,
        metadata=fields.get("metadata"),
        event_id=None,
        id_seed=None,
        source_system=fields.get("source_system"),
    )
    return event_document(event, event_id, attribution)

"""One ingest request, from raw body to answer: authenticate, decode, check, store."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from doow_serverless._core.events import format_timestamp
from doow_serverless._core.wire import (
    WireBatch,
    WireError,
    decode_body,
    echoed_id,
    new_random_id,
    read_batch,
    read_event,
)
from doow_serverless._core.wire import sanitize_server_text as _sanitize

from ._auth import KeyCheck
from ._counters import Counters
from ._http import error_body
from ._store import EventStore, Row

UNKNOWN_LICENSE = "unknown license"
REJECTED_BY_PLAN = "rejected by fault plan"


@dataclass(frozen=True)
class Outcome:
    status: int
    body: dict[str, Any]
    note: str = ""


class Ingestor:
    def __init__(
        self,
        store: EventStore,
        counters: Counters,
        keys: KeyCheck,
        reject_licenses: Iterable[str] = (),
    ) -> None:
        self._store = store
        self._counters = counters
        self._keys = keys
        self._reject_licenses = frozenset(reject_licenses)

    def process(
        self,
        authorization: str | None,
        raw: bytes,
        content_encoding: str | None,
        reject_first: int = 0,
        *,
        answered: bool = True,
    ) -> Outcome:
        """The answer to one ingest request. ``answered`` is False when a fault plan sends
        another answer than this one (after storing): its refusals are recorded as unsent."""
        problem = self._keys.problem(authorization)
        if problem is not None:
            return Outcome(401, error_body(401, problem), "auth")
        try:
            batch = read_batch(decode_body(raw, content_encoding, on_inflated=self._inflated))
        except WireError as exc:
            return Outcome(exc.status, error_body(exc.status, exc.message))
        except ValueError as exc:  # e.g. an integer literal longer than Python will parse
            return Outcome(400, error_body(400, f"malformed JSON: {_sanitize(exc)}"))
        # decode_body accepted it, so the encoding is gzip or identity
        gzipped = (content_encoding or "").strip().lower() == "gzip"
        return self._store_batch(batch, raw, gzipped, reject_first, answered)

    def _inflated(self, size: int) -> None:
        self._counters.add(inflated_bytes=size)

    def _store_batch(
        self, batch: WireBatch, raw: bytes, gzipped: bool, reject_first: int, answered: bool
    ) -> Outcome:
        batch_id = batch.batch_id or new_random_id()
        batch_seq = self._store.next_batch_seq()
        rows: list[Row] = []
        rejections: list[dict[str, Any]] = []
        reject_licenses = self._reject_licenses
        for position, item in enumerate(batch.events):
            event = read_event(item)
            if isinstance(event, str):
                rejections.append({"event_id": echoed_id(item), "reason": event})
            elif event.license_id in reject_licenses:
                rejections.append({"event_id": event.event_id, "reason": UNKNOWN_LICENSE})
            elif reject_first > 0:
                reject_first -= 1
                rejections.append({"event_id": event.event_id, "reason": REJECTED_BY_PLAN})
            else:
                rows.append(
                    (
                        event.event_id,
                        batch_seq,
                        position,
                        event.license_id,
                        event.metric,
                        event.quantity,
                        event.unit,
                        event.kind,
                        event.occurred_at,
                        event.source_system,
                    )
                )
        received_at = format_timestamp(time.time())
        result = self._store.insert(
            batch_seq=batch_seq,
            batch_id=batch_id,
            received_at=received_at,
            raw=raw,
            gzipped=gzipped,
            rows=rows,
            refused=[(rejection["event_id"], rejection["reason"]) for rejection in rejections],
            answered=answered,
        )
        for index, reason in result.failed:
            rejections.append({"event_id": rows[index][0], "reason": reason})
        accepted = len(rows) - len(result.failed)
        duplicates = accepted - result.inserted
        self._counters.add(
            accepted=accepted, duplicates=duplicates, rejected=len(rejections), batches=1
        )
        note = f"accepted={accepted} rejected={len(rejections)} duplicates={duplicates}"
        body: dict[str, Any] = {
            "accepted": accepted,
            "rejected": len(rejections),
            "batch_id": batch_id,
        }
        if not rejections:
            return Outcome(202, body, note)
        body["rejections"] = rejections
        return Outcome(207, body, note)

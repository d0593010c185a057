"""Taking a batch in: check each event as Doow does, write the valid ones to the spool and
fsync them, then queue them. Only then is the batch acknowledged.

Every input (the HTTP ingest, lines over TCP, followed files) comes through here, so each
answers the same way: events Doow would refuse are refused here with Doow's reasons and
are not forwarded; a spool at its bound refuses the whole batch (429 with
``Retry-After``), and so does a disk that cannot write it (503); the client keeps the
batch and sends it again. A batch larger than the whole spool is refused with 413, which
makes a client split it. Event ids are kept as the client settled them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from .._core.wire import (
    echoed_id,
    encode_batch,
    encoding_problem,
    new_random_id,
    read_event,
)
from .._durability.spool import Spool
from ._queue import HeldQueue

# What a client is told to wait when the spool is full: long enough for the forwarder to
# drain some, short enough that a recovered upstream is soon fed again.
FULL_RETRY_AFTER_S = 2


class Rejection(NamedTuple):
    event_id: str | None
    reason: str


class Taken(NamedTuple):
    """The batch's valid events are on disk (and queued); the others are refused."""

    accepted: int
    rejections: list[Rejection]
    batch_id: str | None  # None when no event was valid (nothing was written)


class Refused(NamedTuple):
    """Nothing was taken: the client keeps the batch and sends it again later."""

    status: int  # 429: the spool is full; 413: it never could hold it; 503: the disk refused it
    message: str
    retry_after: int


class Counts(NamedTuple):
    accepted: int
    rejected: int
    refused: int  # batches answered 429 or 503


class Intake:
    def __init__(self, spool: Spool, queue: HeldQueue, on_queued: Callable[[], None]) -> None:
        self._spool = spool
        self._queue = queue
        self._on_queued = on_queued
        self._lock = threading.Lock()
        self._accepted = self._rejected = self._refused = 0

    def full(self, size: int) -> Refused | None:
        """The answer for a batch of at least ``size`` bytes when the spool cannot take it
        now (checked before decoding it); None when it may."""
        if size > self._spool.max_bytes or self._spool.room(size):
            return None
        return self._refuse(429, "the daemon's spool is full; send again later")

    def take(self, items: list[Any]) -> Taken | Refused:
        """Check ``items`` (event documents), write the valid ones durably, queue them."""
        documents: list[dict[str, Any]] = []
        rejections: list[Rejection] = []
        for item in items:
            event = read_event(item)
            if isinstance(event, str):
                rejections.append(Rejection(echoed_id(item), event))
            else:
                item["event_id"] = event.event_id
                documents.append(item)
        batch_id = new_random_id()
        body = self._encode(batch_id, documents, rejections)
        if body is not None:
            refusal = self._write(batch_id, documents, body)
            if refusal is not None:
                return refusal
        with self._lock:
            self._accepted += len(documents)
            self._rejected += len(rejections)
        return Taken(len(documents), rejections, None if body is None else batch_id)

    def _encode(
        self, batch_id: str, documents: list[dict[str, Any]], rejections: list[Rejection]
    ) -> bytes | None:
        """The spool file's body (None: no event left). Events that cannot be encoded (a
        lone surrogate, say, which JSON parsing lets through) move to ``rejections``."""
        if not documents:
            return None
        try:
            return encode_batch(batch_id, documents)
        except (ValueError, TypeError, RecursionError):
            pass
        kept = []
        for document in documents:
            problem = encoding_problem(document)
            if problem is None:
                kept.append(document)
            else:
                rejections.append(Rejection(document["event_id"], problem))
        documents[:] = kept
        return encode_batch(batch_id, documents) if documents else None

    def _write(self, batch_id: str, documents: list[dict[str, Any]], body: bytes) -> Refused | None:
        # Named by arrival, so the files left after a stop are read back oldest first.
        name = f"{time.time_ns():020d}-{batch_id[:8]}"
        if len(body) > self._spool.max_bytes:  # never: a client that splits it can send it
            return self._refuse(
                413, f"a batch of {len(body)} bytes is more than the daemon's spool holds"
            )
        if not self._spool.save(name, body):
            if not self._spool.room(len(body)):
                return self._refuse(429, "the daemon's spool is full; send again later")
            return self._refuse(503, "the daemon could not write the batch to disk")
        self._queue.add(name, batch_id, documents, body)
        self._on_queued()
        return None

    def _refuse(self, status: int, message: str) -> Refused:
        with self._lock:
            self._refused += 1
        return Refused(status, message, FULL_RETRY_AFTER_S)

    def counts(self) -> Counts:
        with self._lock:
            return Counts(self._accepted, self._rejected, self._refused)

"""The tracker's queue: events waiting, batches formed, and batches being sent.

Every accepted event is in exactly one place until it is settled: ``pending`` (validated,
no id yet), ``ready`` (in a batch whose body and ids are fixed), or in flight (a sender has
claimed its batch). A batch that could not be sent goes back to the front of ``ready``
with the same ``batch_id`` and event ids, so a resend is byte-for-byte the same request.
Senders in several threads may each claim a different batch; a flush that finds nothing
left to claim waits for the batches others have in flight.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple

from ._constants import GZIP_MIN_BYTES, MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from ._events import Attribution, QueuedEvent
from ._wire import (
    compress,
    encode_batch,
    event_document,
    new_random_id,
    new_random_ids,
    settle_event_ids,
)


class Batch:
    """Events with settled ids; encoded once, resent byte for byte under the same batch_id."""

    __slots__ = ("_body", "_compressed", "batch_id", "documents", "event_ids")

    def __init__(
        self,
        batch_id: str,
        event_ids: list[str],
        documents: list[dict[str, Any]],
        body: bytes | None = None,
    ) -> None:
        self.batch_id = batch_id
        self.event_ids = event_ids
        self.documents = documents
        self._body = body
        self._compressed: bytes | None = None

    def __len__(self) -> int:
        return len(self.event_ids)

    def __repr__(self) -> str:
        return f"Batch({self.batch_id!r}, {len(self.event_ids)} events)"

    def body(self, compression: bool) -> tuple[bytes, bool]:
        """The request body, and whether it is gzip; built once, the same for every resend."""
        if self._body is None:
            self._body = encode_batch(self.batch_id, self.documents)
        if not compression or len(self._body) < GZIP_MIN_BYTES:
            return self._body, False
        if self._compressed is None:
            self._compressed = compress(self._body)
        return self._compressed, True

    def halves(self) -> tuple[Batch, Batch]:
        """Two new batches, each with half the events; event ids are kept."""
        middle = len(self.documents) // 2
        left_id, right_id = new_random_ids(2)
        return (
            Batch(left_id, self.event_ids[:middle], self.documents[:middle]),
            Batch(right_id, self.event_ids[middle:], self.documents[middle:]),
        )


FULL = -1
CLOSED = -2


class Counts(NamedTuple):
    accepted: int
    delivered: int
    rejected: int
    pending: int


class Unencodable(NamedTuple):
    """An event that can never be sent (alone larger than a request may be); refused locally."""

    event_id: str
    reason: str


class Outbox:
    def __init__(
        self,
        max_events: int,
        *,
        max_batch_events: int = MAX_BATCH_EVENTS,
        max_batch_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        self._max_events = max_events
        self._max_batch_events = max_batch_events
        self._max_batch_bytes = max_batch_bytes
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._pending: deque[QueuedEvent] = deque()
        self._ready: deque[Batch] = deque()
        self._in_flight: set[Batch] = set()
        self._count = 0
        self._closed = False
        # Where every queued event went; read together, under the lock, by counts().
        self._accepted = 0
        self._delivered = 0
        self._rejected = 0

    def put(self, event: QueuedEvent) -> int:
        """Queue an event; the events not yet in a batch, FULL, or CLOSED."""
        with self._lock:
            if self._closed:
                return CLOSED
            if self._count >= self._max_events:
                return FULL
            return self._append(event)

    def put_waiting(self, event: QueuedEvent, timeout: float) -> int:
        """Like :meth:`put`, but wait up to ``timeout`` seconds for a sender to free space."""
        with self._lock:
            ready = self._changed.wait_for(
                lambda: self._closed or self._count < self._max_events, timeout
            )
            if self._closed:
                return CLOSED
            if not ready:
                return FULL
            return self._append(event)

    def close(self) -> None:
        """Accept no more events (what is queued can still be sent)."""
        with self._lock:
            self._closed = True
            self._changed.notify_all()

    def counts(self) -> Counts:
        """Accepted, delivered, rejected and still pending, as one consistent reading."""
        with self._lock:
            return Counts(self._accepted, self._delivered, self._rejected, self._count)

    def _append(self, event: QueuedEvent) -> int:
        self._pending.append(event)
        self._count += 1
        self._accepted += 1
        return len(self._pending)

    def __len__(self) -> int:
        """Events not yet settled: pending, in ready batches, and in flight."""
        return self._count

    def claim(self, attribution: Attribution | None, refused: list[Unencodable]) -> Batch | None:
        """Take the next batch to send: a waiting one first, else a new one from pending.

        Events too large to ever be sent are removed, counted as settled and appended to
        ``refused`` for the caller to report.
        """
        with self._lock:
            batch = self._ready.popleft() if self._ready else self._form_batch(attribution, refused)
            if batch is None:
                return None
            self._in_flight.add(batch)
            return batch

    def _form_batch(
        self, attribution: Attribution | None, refused: list[Unencodable]
    ) -> Batch | None:
        """The next batch from pending: at most the event limit, cut to the byte limit."""
        while self._pending:
            count = min(len(self._pending), self._max_batch_events)
            events = [self._pending.popleft() for _ in range(count)]
            try:
                batch = self._batch_of(events, attribution, refused)
            except BaseException:
                self._pending.extendleft(reversed(events))  # nothing lost, whatever failed
                raise
            if batch is not None:
                return batch
        return None

    def _batch_of(
        self,
        events: list[QueuedEvent],
        attribution: Attribution | None,
        refused: list[Unencodable],
    ) -> Batch | None:
        """One batch from ``events`` (popped from pending); what does not fit is put back."""
        event_ids = settle_event_ids(events)
        documents = [
            event_document(event, event_id, attribution)
            for event, event_id in zip(events, event_ids, strict=True)
        ]
        batch_id = new_random_id()
        body = self._encode_within_limit(batch_id, events, event_ids, documents, refused)
        kept = len(documents)
        # Ids are settled once: an event put back keeps the id it was given here.
        self._pending.extendleft(
            event._replace(event_id=event_id, id_seed=None)
            for event, event_id in zip(
                reversed(events[kept:]), reversed(event_ids[kept:]), strict=True
            )
        )
        if body is not None:
            return Batch(batch_id, event_ids[:kept], documents, body)
        return None

    def _encode_within_limit(
        self,
        batch_id: str,
        events: list[QueuedEvent],
        event_ids: list[str],
        documents: list[dict[str, Any]],
        refused: list[Unencodable],
    ) -> bytes | None:
        """Encode the longest prefix of ``documents`` whose body fits the byte limit.

        ``documents`` is cut in place to that prefix (the caller puts the rest back).
        Events that can never be sent, too large alone or not encodable, are removed from
        all three lists, counted as settled and appended to ``refused``.
        """

        def refuse(index: int, reason: str) -> None:
            refused.append(Unencodable(event_ids.pop(index), reason))
            del events[index]
            del documents[index]
            self._count -= 1
            self._rejected += 1

        while documents:
            try:
                body = encode_batch(batch_id, documents)
            except Exception:
                # Validation makes this unreachable; should it ever be reached, the
                # offending event is refused alone rather than the batch being stuck.
                refuse(_first_unencodable(documents), "could not be encoded as JSON")
                continue
            if len(body) <= self._max_batch_bytes:
                return body
            if len(documents) == 1:
                refuse(0, f"{len(body)} bytes: larger than a request may be")
                return None
            # Keep the share that should fit (exact for same-size events); again until it does.
            share = len(documents) * self._max_batch_bytes // len(body)
            del documents[max(1, min(len(documents) - 1, share)) :]
        return None

    def release(self, batch: Batch) -> None:
        """A batch that could not be sent now: back to the front, unchanged."""
        with self._lock:
            self._in_flight.discard(batch)
            self._ready.appendleft(batch)
            self._changed.notify_all()

    def replace(self, batch: Batch, parts: Sequence[Batch]) -> None:
        """A batch that was too large, replaced by smaller ones at the front, in order."""
        with self._lock:
            self._in_flight.discard(batch)
            self._ready.extendleft(reversed(parts))
            self._changed.notify_all()

    def settle(self, batch: Batch, rejected: int = 0) -> None:
        """A batch that is done with: ``rejected`` of its events refused, the rest delivered."""
        with self._lock:
            self._in_flight.discard(batch)
            self._count -= len(batch)
            self._delivered += len(batch) - rejected
            self._rejected += rejected
            self._changed.notify_all()

    def wait_for_others(self, timeout: float) -> bool:
        """Wait while other senders have batches in flight; False when nothing is left.

        True at once when something became claimable since the caller last looked.
        """
        with self._lock:
            if self._ready or self._pending:
                return True
            if not self._in_flight:
                return False
            self._changed.wait(timeout)
            return True


def _first_unencodable(documents: list[dict[str, Any]]) -> int:
    for index, document in enumerate(documents):
        try:
            encode_batch("", [document])
        except Exception:
            return index
    return 0

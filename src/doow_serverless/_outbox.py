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
from ._wire import compress, encode_batch, event_document, new_random_ids, settle_event_ids


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
        self.accepted = 0  # events ever queued

    def put(self, event: QueuedEvent) -> int:
        """Queue an event; the number of events not yet in a batch, or -1 when full."""
        with self._lock:
            if self._count >= self._max_events:
                return -1
            return self._append(event)

    def put_waiting(self, event: QueuedEvent, timeout: float) -> int:
        """Like :meth:`put`, but wait up to ``timeout`` seconds for a sender to free space."""
        with self._lock:
            if not self._changed.wait_for(lambda: self._count < self._max_events, timeout):
                return -1
            return self._append(event)

    def _append(self, event: QueuedEvent) -> int:
        self._pending.append(event)
        self._count += 1
        self.accepted += 1
        return len(self._pending)

    def __len__(self) -> int:
        """Events not yet settled: pending, in ready batches, and in flight."""
        return self._count

    @property
    def in_flight(self) -> int:
        with self._lock:
            return sum(len(batch) for batch in self._in_flight)

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
            event_ids = settle_event_ids(events)
            documents = [
                event_document(event, event_id, attribution)
                for event, event_id in zip(events, event_ids, strict=True)
            ]
            batch_id = new_random_ids(1)[0]
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

        while documents:
            try:
                body = encode_batch(batch_id, documents)
            except (TypeError, ValueError):
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

    def settle(self, batch: Batch) -> None:
        """A batch that is done with: delivered, or refused for good."""
        with self._lock:
            self._in_flight.discard(batch)
            self._count -= len(batch)
            self._changed.notify_all()

    def wait_for_others(self, timeout: float) -> bool:
        """Wait while other senders have batches in flight; False when there are none."""
        with self._lock:
            if not self._in_flight:
                return False
            self._changed.wait(timeout)
            return True


def _first_unencodable(documents: list[dict[str, Any]]) -> int:
    for index, document in enumerate(documents):
        try:
            encode_batch("", [document])
        except (TypeError, ValueError):
            return index
    return 0

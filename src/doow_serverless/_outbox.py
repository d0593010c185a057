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
from typing import NamedTuple

from ._constants import GZIP_MIN_BYTES, MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from ._events import Attribution, QueuedEvent
from ._wire import batch_size, compress, encode_batch, encode_event, new_random_id, settle_event_id


class Batch:
    """Events with settled ids, encoded once; resent byte for byte under the same batch_id."""

    __slots__ = ("_body", "_compressed", "batch_id", "event_ids", "parts")

    def __init__(self, batch_id: str, event_ids: list[str], parts: list[bytes]) -> None:
        self.batch_id = batch_id
        self.event_ids = event_ids
        self.parts = parts
        self._body: bytes | None = None
        self._compressed: bytes | None = None

    def __repr__(self) -> str:
        return f"Batch({self.batch_id!r}, {len(self.event_ids)} events)"

    def __len__(self) -> int:
        return len(self.event_ids)

    def body(self, compression: bool) -> tuple[bytes, bool]:
        """The request body, and whether it is gzip; built once, the same for every resend."""
        if self._body is None:
            self._body = encode_batch(self.batch_id, self.parts)
        if not compression or len(self._body) < GZIP_MIN_BYTES:
            return self._body, False
        if self._compressed is None:
            self._compressed = compress(self._body)
        return self._compressed, True

    def halves(self) -> tuple[Batch, Batch]:
        """Two new batches, each with half the events; event ids are kept."""
        middle = len(self.parts) // 2
        return (
            Batch(new_random_id(), self.event_ids[:middle], self.parts[:middle]),
            Batch(new_random_id(), self.event_ids[middle:], self.parts[middle:]),
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
        batch_id = new_random_id()
        size = batch_size(batch_id, [])
        event_ids: list[str] = []
        parts: list[bytes] = []
        while self._pending and len(parts) < self._max_batch_events:
            event = self._pending.popleft()
            event_id = settle_event_id(event)
            try:
                part = encode_event(event, event_id, attribution)
            except (TypeError, ValueError):
                # Validation makes this unreachable; if it ever is reached, one event is
                # refused (and reported) rather than the whole batch being stuck.
                refused.append(Unencodable(event_id, "could not be encoded as JSON"))
                self._count -= 1
                continue
            added = len(part) + (1 if parts else 0)
            if size + added > self._max_batch_bytes:
                if not parts:
                    refused.append(
                        Unencodable(event_id, f"{len(part)} bytes: larger than a request")
                    )
                    self._count -= 1
                    continue
                # Keep the id it was given, so its identity never changes.
                self._pending.appendleft(event._replace(event_id=event_id, id_seed=None))
                break
            size += added
            event_ids.append(event_id)
            parts.append(part)
        if not parts:
            return None
        return Batch(batch_id, event_ids, parts)

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

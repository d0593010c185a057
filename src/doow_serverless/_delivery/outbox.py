"""The tracker's queue: events waiting, batches formed, and batches being sent.

Every accepted event is in exactly one place until it is settled: ``pending`` (validated,
no id yet), ``ready`` (in a batch whose body and ids are fixed), or in flight (a sender has
claimed its batch). A batch that could not be sent goes back to the front of ``ready``
with the same ``batch_id`` and event ids, so a resend is byte-for-byte the same request.
Senders in several threads may each claim a different batch; a flush that finds nothing
left to claim waits for the batches others have in flight.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Sequence
from itertools import islice
from typing import Any, NamedTuple

from .._core.constants import GZIP_MIN_BYTES, MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from .._core.events import Attribution, QueuedEvent
from .._core.wire import (
    batch_envelope_size,
    compress,
    document_encoder,
    encode_batch,
    encode_standard,
    event_document,
    join_batch,
    new_random_id,
    new_random_ids,
    settled_id,
)


class Batch:
    """Events with settled ids; encoded once, resent byte for byte under the same batch_id.

    A batch formed here keeps each event's JSON text, not its document: the documents are
    read back from the texts only on the rare paths that need them (a batch combined with
    one that has no texts, a log line that must be escaped), so the thousands of small
    dicts a flush builds die as soon as they are encoded.
    """

    __slots__ = (
        "_body",
        "_compressed",
        "_documents",
        "batch_id",
        "encoded",
        "event_ids",
        "log_lines",
        "logged",
        "recovered",
        "saved",
        "sealed",
        "settled",
        "spool_files",
    )

    def __init__(
        self,
        batch_id: str,
        event_ids: list[str],
        documents: list[dict[str, Any]] | None,
        body: bytes | None = None,
        encoded: list[str] | None = None,
    ) -> None:
        if documents is None and encoded is None:
            raise ValueError("a batch needs its documents or their JSON texts")
        self.batch_id = batch_id
        self.event_ids = event_ids
        self._documents = documents
        # Each document's JSON, when the batch was formed here (the body joins them).
        self.encoded = encoded
        self._body = body
        self._compressed: bytes | None = None
        # On disk in the spool, or written out as a log line: kept if the process dies.
        self.saved = False
        self.logged = False  # every event of it is in a log line
        # The log lines (batch ids) that hold this batch's events, not answered for yet.
        self.log_lines: list[str] = []
        # The spool files (batch ids) that hold this batch's events.
        self.spool_files: list[str] = []
        # Sent at least once (or split from one that was): its id and events are fixed for
        # good. A batch never sent may be combined with the next one into one request.
        self.sealed = False
        self.settled = False  # answered for, split, or combined: its files are not its own
        self.recovered = False  # left by a dead process; not counted against the queue bound

    @classmethod
    def of_documents(cls, documents: list[dict[str, Any]]) -> Batch:
        """A new batch of event documents whose ids are settled already."""
        return cls(new_random_id(), [document["event_id"] for document in documents], documents)

    @property
    def documents(self) -> list[dict[str, Any]]:
        """The events' documents (read back from their JSON texts the first time)."""
        if self._documents is None:
            assert self.encoded is not None
            self._documents = [json.loads(text) for text in self.encoded]
        return self._documents

    def __len__(self) -> int:
        return len(self.event_ids)

    def __repr__(self) -> str:
        return f"Batch({self.batch_id!r}, {len(self.event_ids)} events)"

    def body(self, compression: bool) -> tuple[bytes, bool]:
        """The request body, and whether it is gzip; built once, the same for every resend."""
        if self._body is None:
            if self.encoded is not None:
                self._body = join_batch(self.batch_id, self.encoded)
            else:
                self._body = encode_batch(self.batch_id, self.documents)
        if not compression or len(self._body) < GZIP_MIN_BYTES:
            return self._body, False
        if self._compressed is None:
            self._compressed = compress(self._body)
        return self._compressed, True

    def halves(self) -> tuple[Batch, Batch]:
        """Two new batches, each with half the events; event ids are kept."""
        middle = len(self.event_ids) // 2
        left_id, right_id = new_random_ids(2)
        encoded, documents = self.encoded, self._documents
        halves = (
            Batch(
                left_id,
                self.event_ids[:middle],
                None if documents is None else documents[:middle],
                encoded=None if encoded is None else encoded[:middle],
            ),
            Batch(
                right_id,
                self.event_ids[middle:],
                None if documents is None else documents[middle:],
                encoded=None if encoded is None else encoded[middle:],
            ),
        )
        for half in halves:
            half.sealed = True  # combined again, they would be refused as too large again
            half.recovered = self.recovered
        return halves

    def combined(self, parts: Sequence[Batch]) -> Batch:
        """One batch of this one's events and then those of ``parts`` (none of them sent)."""
        every = [self, *parts]
        encodings = [part.encoded for part in every]
        texts = None
        if all(item is not None for item in encodings):
            texts = [text for item in encodings if item is not None for text in item]
        batch = Batch(
            new_random_id(),
            [event_id for part in every for event_id in part.event_ids],
            None if texts is not None else [doc for part in every for doc in part.documents],
            encoded=texts,
        )
        batch.saved = all(part.saved for part in every)
        batch.logged = all(part.logged for part in every)
        batch.spool_files = [name for part in every for name in part.spool_files]
        batch.log_lines = [name for part in every for name in part.log_lines]
        for part in every:  # the combined batch holds their files and lines now
            part.spool_files = []
            part.log_lines = []
            part.settled = True
        return batch


FULL = -1
CLOSED = -2


class Counts(NamedTuple):
    accepted: int
    recovered: int
    delivered: int
    rejected: int
    persisted: int
    abandoned: int
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
        self._recovered = 0
        self._delivered = 0
        self._rejected = 0
        self._persisted = 0
        self._abandoned = 0
        self._recovered_waiting = 0  # recovered events not settled yet

    def put(self, event: QueuedEvent) -> int:
        """Queue an event; the events not yet in a batch, FULL, or CLOSED."""
        with self._lock:
            if self._closed:
                return CLOSED
            if self._count - self._recovered_waiting >= self._max_events:
                return FULL
            return self._append(event)

    def put_waiting(self, event: QueuedEvent, timeout: float) -> int:
        """Like :meth:`put`, but wait up to ``timeout`` seconds for a sender to free space."""
        with self._lock:
            ready = self._changed.wait_for(
                lambda: self._closed or self._count - self._recovered_waiting < self._max_events,
                timeout,
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
        """Where every event went, as one consistent reading."""
        with self._lock:
            return Counts(
                self._accepted,
                self._recovered,
                self._delivered,
                self._rejected,
                self._persisted,
                self._abandoned,
                self._count,
            )

    def adopt(self, batches: Sequence[Batch]) -> None:
        """Batches a dead process left behind: at the front, to be sent first.

        They do not count against ``max_events``: new events are not dropped because a
        process before this one could not deliver its own.
        """
        with self._lock:
            self._ready.extendleft(reversed(batches))
            adopted = sum(len(batch) for batch in batches)
            for batch in batches:
                batch.recovered = True
            self._count += adopted
            self._recovered += adopted
            self._recovered_waiting += adopted
            self._changed.notify_all()

    def append(self, batches: Sequence[Batch]) -> None:
        """Batches whose event ids are settled already (a relay's intake), at the back, in
        order, counted as accepted; the caller bounds how many events it puts here."""
        with self._lock:
            self._ready.extend(batches)
            added = sum(len(batch) for batch in batches)
            self._count += added
            self._accepted += added
            self._changed.notify_all()

    def form_one(self, attribution: Attribution | None, refused: list[Unencodable]) -> Batch | None:
        """Turn the oldest pending events into one more waiting batch (ids settled)."""
        with self._lock:
            batch = self._form_batch(attribution, refused)
            if batch is not None:
                self._ready.append(batch)
            return batch

    def form_all(self, attribution: Attribution | None, refused: list[Unencodable]) -> None:
        while self.form_one(attribution, refused) is not None:
            pass

    def waiting(self) -> list[Batch]:
        """The batches formed and not claimed by a sender, oldest first."""
        with self._lock:
            return list(self._ready)

    def in_flight(self) -> list[Batch]:
        """The batches senders have claimed and not settled yet."""
        with self._lock:
            return list(self._in_flight)

    def claim_all(self, attribution: Attribution | None, refused: list[Unencodable]) -> list[Batch]:
        """Claim every waiting batch, pending events formed first (at shutdown)."""
        self.form_all(attribution, refused)
        with self._lock:
            batches = list(self._ready)
            self._ready.clear()
            self._in_flight.update(batches)
            return batches

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
            if self._ready:
                batch: Batch | None = self._ready.popleft()
                assert batch is not None
                if not batch.sealed:
                    batch = self._with_unsent_followers(batch)
            else:
                batch = self._form_batch(attribution, refused)
            if batch is None:
                return None
            self._in_flight.add(batch)
            return batch

    def _with_unsent_followers(self, first: Batch) -> Batch:
        """``first`` and the never-sent batches after it, as one batch within the limits.

        Batches formed while no request could be made (no time left, rate limited) would
        otherwise each cost a request of their own.
        """
        parts: list[Batch] = []
        events = len(first)
        size = len(first.body(False)[0])
        while self._ready and not self._ready[0].sealed:
            following = self._ready[0]
            following_size = len(following.body(False)[0])
            if (
                events + len(following) > self._max_batch_events
                or size + following_size > self._max_batch_bytes
            ):
                break
            parts.append(self._ready.popleft())
            events += len(following)
            size += following_size
        return first.combined(parts) if parts else first

    def _form_batch(
        self, attribution: Attribution | None, refused: list[Unencodable]
    ) -> Batch | None:
        """The next batch from pending: at most the event limit, cut to the byte limit."""
        pending = self._pending
        while pending:
            # Looked at, not taken: if anything below fails, every event is still queued.
            window = list(islice(pending, self._max_batch_events))
            batch, used = self._batch_of(window, attribution, refused)
            for _ in range(used):
                pending.popleft()
            if batch is not None:
                return batch
        return None

    def _batch_of(
        self,
        events: list[QueuedEvent],
        attribution: Attribution | None,
        refused: list[Unencodable],
    ) -> tuple[Batch | None, int]:
        """One batch from the first of ``events`` (the oldest pending): the longest run
        whose body fits the byte limit; and how many of ``events`` it used up.

        Each event is given its id and encoded once; the body joins those encodings (and
        the log lines reuse them). Events that can never be sent, too large alone or not
        encodable, are used up too: counted as settled and appended to ``refused``.
        """
        batch_id = new_random_id()
        limit = self._max_batch_bytes
        envelope = batch_envelope_size(batch_id)
        randoms = iter(
            new_random_ids(
                sum(1 for event in events if event.event_id is None and event.id_seed is None)
            )
        )
        encode = document_encoder(len(events))
        kept_ids: list[str] = []
        encoded: list[str] = []
        size = envelope
        used = 0
        for event in events:
            event_id = settled_id(event, randoms)
            document = event_document(event, event_id, attribution)
            try:
                text = encode(document)
            except Exception:
                # Validation makes this unreachable; should it ever be reached, the
                # offending event is refused alone rather than the batch being stuck.
                self._refuse(refused, event_id, "could not be encoded as JSON")
                used += 1
                continue
            length = len(text) if text.isascii() else len(text.encode())
            if envelope + length > limit:
                self._refuse(
                    refused, event_id, f"{envelope + length} bytes: larger than a request may be"
                )
                used += 1
                continue
            if encoded:
                length += 1  # the comma before it
            if size + length > limit:
                break
            size += length
            kept_ids.append(event_id)
            encoded.append(text)
            used += 1
        if not encoded:
            return None, used
        return Batch(batch_id, kept_ids, None, join_batch(batch_id, encoded), encoded), used

    def _refuse(self, refused: list[Unencodable], event_id: str, reason: str) -> None:
        refused.append(Unencodable(event_id, reason))
        self._count -= 1
        self._rejected += 1

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
            self._done(batch)
            self._delivered += len(batch) - rejected
            self._rejected += rejected

    def hand_over(self, batch: Batch, persisted: bool) -> None:
        """A claimed batch this process gives up: persisted for replay, or abandoned."""
        with self._lock:
            self._done(batch)
            if persisted:
                self._persisted += len(batch)
            else:
                self._abandoned += len(batch)

    def _done(self, batch: Batch) -> None:
        self._in_flight.discard(batch)
        self._count -= len(batch)
        if batch.recovered:
            self._recovered_waiting -= len(batch)
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


def pack_documents(
    documents: Sequence[dict[str, Any]],
    *,
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> list[Batch]:
    """Batches of event documents whose ids are already settled, within the request limits.

    For events read back from a spool or a log: each keeps its ``event_id``, so sending
    them again counts nothing twice.
    """
    envelope = batch_envelope_size(new_random_id())
    batches: list[Batch] = []
    current: list[dict[str, Any]] = []
    texts: list[str] = []
    size = envelope
    for document in documents:
        text = encode_standard(document)
        length = (len(text) if text.isascii() else len(text.encode())) + 1
        if current and (len(current) >= max_events or size + length > max_bytes):
            batches.append(_settled_batch(current, texts))
            current, texts, size = [], [], envelope
        current.append(document)
        texts.append(text)
        size += length
    if current:
        batches.append(_settled_batch(current, texts))
    return batches


def _settled_batch(documents: list[dict[str, Any]], encoded: list[str]) -> Batch:
    return Batch(
        new_random_id(), [document["event_id"] for document in documents], documents, None, encoded
    )

"""What the daemon holds: every batch on disk, as many as the memory bound allows in memory.

Each accepted batch is a spool file first. The forwarding engine's outbox holds the
batches in memory, up to ``max_events`` events (or one batch, however large); the others
wait on disk, by name only, oldest first, and are read back as the outbox drains. So a
dead upstream fills the spool, up to its bound, and not the memory.

A batch queued here is one request of a client, not yet sent: the engine combines
consecutive ones into requests of up to 500 events and 450 KiB. Its spool file goes once
the server has answered for all its events.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from .._delivery.outbox import Batch, Outbox
from .._durability.spool import Spool


class HeldQueue:
    def __init__(self, outbox: Outbox, spool: Spool, max_events: int) -> None:
        self._outbox = outbox
        self._spool = spool
        self._max_events = max_events
        self._lock = threading.Lock()
        self._on_disk: deque[str] = deque()  # spool files not in memory, oldest first

    def add(self, name: str, batch_id: str, documents: list[dict[str, Any]], body: bytes) -> None:
        """A batch just spooled as ``name``: into memory if there is room and nothing
        older waits on disk, else it waits on disk."""
        with self._lock:
            if self._on_disk or not self._has_room(len(documents)):
                self._on_disk.append(name)
                return
            self._outbox.append([_held(name, batch_id, documents, body)])

    def adopt(self, names: Iterable[str]) -> None:
        """Files a previous daemon left: before anything accepted since."""
        with self._lock:
            self._on_disk.extendleft(reversed(list(names)))
        self.refill()

    def refill(self) -> int:
        """Read batches back from disk, oldest first, while memory has room; how many."""
        loaded = 0
        while True:
            with self._lock:
                if not self._on_disk or not self._has_room(1):
                    return loaded
                name = self._on_disk.popleft()
            spooled = self._spool.read(name)
            if spooled is None:
                continue  # not a batch: set aside by the spool
            with self._lock:
                if not self._has_room(len(spooled.event_ids)):
                    self._on_disk.appendleft(name)  # read again when there is room
                    return loaded
                self._outbox.append(
                    [_held(name, spooled.batch_id, spooled.documents, spooled.body)]
                )
            loaded += 1

    @property
    def on_disk(self) -> int:
        """Batches waiting on disk only."""
        return len(self._on_disk)

    def _has_room(self, events: int) -> bool:
        held = len(self._outbox)
        return held == 0 or held + events <= self._max_events


def _held(name: str, batch_id: str, documents: list[dict[str, Any]], body: bytes) -> Batch:
    batch = Batch(batch_id, [document["event_id"] for document in documents], documents, body)
    batch.spool_files = [name]
    batch.saved = True
    return batch

"""What keeps a tracker's events past its process: the spool, and log lines as a last resort.

The tracker calls in at fixed points: when it opens (adopt what dead processes spooled),
before a flush sends anything (settle ids and spool every batch), before each request (a
batch formed meanwhile), when a batch is answered for (its files go), at the end of a
serverless flush and when the deadline watch fires (log what is not delivered, spooled or
not: a reclaimed sandbox takes its disk along), and at shutdown (hand over what is left).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from .._core.config import TrackerConfig, redact
from .._core.constants import LOGGER_NAME
from .._core.deadline import Deadline
from .._delivery.outbox import Batch, Outbox, Unencodable
from .lines import write_unsent
from .spool import Spool, SpooledBatch

logger = logging.getLogger(LOGGER_NAME)


class CarryOver:
    def __init__(self, config: TrackerConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        # One thread at a time spools or logs waiting batches (a flush, the deadline watch,
        # shutdown), so a batch is written once, not once by each.
        self._persisting = threading.Lock()
        self._opened = False
        self._spool: Spool | None = None
        if config.spool_dir is not None:
            self._spool = Spool(config.spool_dir, config.spool_max_bytes)

    @property
    def spooling(self) -> bool:
        return self._spool is not None

    def open(self, outbox: Outbox) -> str | None:
        """Once per process: claim a spool directory, and queue (first) what dead processes
        left in it. Why the spool is off, when it cannot be used."""
        with self._lock:
            if self._opened or self._spool is None:
                return None
            self._opened = True
            spool = self._spool
        try:
            found = spool.open()
        except Exception as exc:  # SpoolUnavailable, or a failure no one foresaw
            self._spool = None
            return str(exc)
        if found:
            batches = self._each_event_once(found, spool)
            outbox.adopt(batches)
            logger.info(
                "doow-serverless: %d event(s) left unsent by an earlier process are sent first",
                sum(len(batch) for batch in batches),
            )
        return None

    def form(self, outbox: Outbox, refused: list[Unencodable], until: Deadline) -> None:
        """Before a flush sends anything: settle the ids of queued events in batches and
        spool them, oldest first, until ``until``, so a kill during the flush loses none.

        Bounded, so a large backlog cannot eat the flush's budget: what is not spooled by
        then is spooled by a later flush, or logged at the end of this one.
        """
        if self._spool is None:
            return  # batches are formed as they are sent
        if not self._persisting.acquire(timeout=until.remaining()):
            return  # the deadline watch is persisting: it spools these too
        try:
            for batch in self._waiting(outbox, refused, until):
                self.spool(batch)
        finally:
            self._persisting.release()

    def spool(self, batch: Batch) -> None:
        """Write a batch as one file, instead of the files its events were in until now."""
        spool = self._spool
        if spool is None or batch.batch_id in batch.spool_files:
            return
        if not spool.save(batch.batch_id, batch.body(False)[0]):
            return
        for name in batch.spool_files:
            spool.discard(name)
        batch.spool_files = [batch.batch_id]
        batch.saved = True
        if batch.settled:  # answered for, or combined into another, meanwhile
            self.settled(batch)

    def split(self, batch: Batch, halves: tuple[Batch, Batch]) -> None:
        """A batch split in two: each half gets a file, else keeps a hold on the whole's."""
        spool = self._spool
        if spool is None or not batch.spool_files:
            return
        for half in halves:
            self.spool(half)
            if not half.spool_files:
                half.spool_files = list(batch.spool_files)
                half.saved = True
                for name in half.spool_files:
                    spool.share(name)

    def settled(self, batch: Batch) -> None:
        """A batch answered for by the server (or split): its hold on its files goes."""
        batch.settled = True
        names, batch.spool_files = batch.spool_files, []
        if self._spool is not None:
            for name in names:
                self._spool.discard(name)

    def log_unlogged(
        self, outbox: Outbox, why: str, refused: list[Unencodable], until: Deadline | None
    ) -> None:
        """Print each waiting batch not printed yet, spooled or not: a serverless sandbox can
        be reclaimed while it is idle, and its /tmp (the spool) with it; the function's logs
        outlive it. ``until`` bounds it (None: as long as it takes)."""
        if not self._config.log_unsent:
            return
        if not self._persisting.acquire(timeout=-1 if until is None else until.remaining()):
            return  # the deadline watch is persisting: it logs these too
        try:
            self._log(outbox, why, refused, until, spooled_too=True)
        finally:
            self._persisting.release()

    def persist(self, outbox: Outbox, why: str, refused: list[Unencodable]) -> None:
        """Spool and log everything queued, sending nothing: the process may die soon."""
        self.open(outbox)
        with self._persisting:
            self._keep_all(outbox, why, refused, log_spooled=True)

    def hand_over(self, outbox: Outbox, why: str, refused: list[Unencodable]) -> tuple[int, int]:
        """At shutdown: leave what is left in the spool, else in log lines. The events kept,
        and those that could not be."""
        with self._persisting:
            self._keep_all(outbox, why, refused, log_spooled=False)
            kept = lost = 0
            for batch in outbox.claim_all(self._config.attribution, refused):
                outbox.hand_over(batch, persisted=batch.saved)
                if batch.saved:
                    kept += len(batch)
                else:
                    lost += len(batch)
            return kept, lost

    def _keep_all(
        self, outbox: Outbox, why: str, refused: list[Unencodable], *, log_spooled: bool
    ) -> None:
        """Spool every waiting batch, then log them (``log_spooled``: the spooled ones too).
        The caller holds ``_persisting``."""
        if self._spool is not None:
            for batch in self._waiting(outbox, refused, None):
                self.spool(batch)
        if self._config.log_unsent:
            self._log(outbox, why, refused, None, spooled_too=log_spooled)

    def _log(
        self,
        outbox: Outbox,
        why: str,
        refused: list[Unencodable],
        until: Deadline | None,
        *,
        spooled_too: bool,
    ) -> None:
        reason = redact(why, self._config.api_key)
        for batch in self._waiting(outbox, refused, until, unlogged=spooled_too):
            if write_unsent(batch.batch_id, batch.documents, reason):
                batch.logged = batch.saved = True

    def _waiting(
        self,
        outbox: Outbox,
        refused: list[Unencodable],
        until: Deadline | None,
        *,
        unlogged: bool = False,
    ) -> Iterator[Batch]:
        """The waiting batches neither spooled nor logged (``unlogged``: not logged), then
        new ones formed from pending events one at a time, oldest first, while ``until``
        allows (None: all of them)."""
        attribution = self._config.attribution
        for batch in outbox.waiting(unlogged=unlogged):
            if until is not None and until.expired():
                return
            yield batch
        while until is None or not until.expired():
            formed = outbox.form_one(attribution, refused)
            if formed is None:
                return
            yield formed

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()

    def forget_after_fork(self) -> None:
        """In a forked child: the spool directory, and its lock, are the parent's."""
        self._lock = threading.Lock()
        self._persisting = threading.Lock()
        self._opened = False
        if self._spool is not None:
            self._spool.forget_after_fork()

    def _each_event_once(self, found: list[SpooledBatch], spool: Spool) -> list[Batch]:
        """Spooled batches as batches to send, each event once (a kill while a batch was
        being split can leave an event in two files)."""
        seen: set[str] = set()
        batches: list[Batch] = []
        for item in found:
            if seen.isdisjoint(item.event_ids):
                batch = Batch(item.batch_id, item.event_ids, item.documents, item.body)
                batch.saved = batch.sealed = True  # it may have been sent: keep it as it is
                batch.spool_files = [item.name]
                batches.append(batch)
            else:
                # The events not seen yet, as a new batch (a subset of a batch fits the
                # limits) that keeps its hold on this file; the others are in earlier ones.
                fresh = [doc for doc in item.documents if doc["event_id"] not in seen]
                if fresh:
                    batch = Batch.of_documents(fresh)
                    batch.saved = batch.sealed = True
                    batch.spool_files = [item.name]
                    batches.append(batch)
                else:
                    spool.discard(item.name)
            seen.update(item.event_ids)
        return batches

"""What keeps a queue's events past its process: the spool, and log lines.

The two share the work. The spool (``/tmp``) lets the next process in the same sandbox
send what this one left, by itself; it dies with the sandbox. A log line outlives the
sandbox, but someone (``replay``, a forwarder) has to act on it. So:

- **write-ahead** (on serverless platforms, by default): a batch's line is written before
  its first request, and the batch spooled, so no kill at any moment of a flush, with
  ``/tmp`` kept or lost, loses an event that has no line;
- **quiet** (``log_ahead`` off): only batches a flush could not deliver get a line, at its
  end; a kill during a request, with ``/tmp`` lost, can then lose that batch;
- either way, batches adopted from a dead process's spool get a line when adopted (the
  adopting process may die too, and ``/tmp`` with it), the deadline watch writes a line
  for everything queued or in flight, and a line is written however little time is left:
  the invocation's reserve pays for it, never the budget of the send.

When every event of a line has been answered for by the server (delivered, or refused for
good), a short acknowledgement line names it, so a replay of the same log, or a forwarder
that sees both, does not send those events again. Lines are counted like spool files: a
line held by the two halves of a split batch is answered for when both halves are.

The sender calls in at fixed points: when it opens (adopt what dead processes spooled),
before it sends anything (settle ids in batches and keep them), before each request, when
a batch is answered for or split, at the end of a flush, when the deadline watch fires,
and at shutdown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from .._core.config import TrackerConfig, redact
from .._core.constants import LOGGER_NAME
from .._core.deadline import Deadline
from .._delivery.outbox import Batch, Outbox, Unencodable
from .lines import write_acks, write_unsent
from .spool import Spool, SpooledBatch

logger = logging.getLogger(LOGGER_NAME)

# The reasons lines give (short: the write-ahead one is in every healthy invocation's log).
WRITE_AHEAD = "write-ahead"
ADOPTED = "adopted from a process that died here"
IN_FLIGHT = "in flight when an invocation neared its deadline"
LOGS_ONLY = "logs-only delivery"


class CarryOver:
    """``spool``: one the caller opened and writes to (the daemon's, which acknowledges a
    batch once it is spooled): used as it is, never adopted from or closed here."""

    def __init__(self, config: TrackerConfig, spool: Spool | None = None) -> None:
        self._config = config
        self._log = config.log_unsent
        self._log_ahead = config.log_unsent and config.log_ahead
        self._lock = threading.Lock()
        # One thread at a time writes lines, and one spools (a flush, the deadline watch,
        # shutdown), so a batch is written once, not once by each. Two locks: a flush
        # waits for lines as long as it takes (the last resort), for the spool only so long.
        self._logging = threading.Lock()
        self._spooling = threading.Lock()
        self._opened = spool is not None  # the owner opened it
        self._owns_spool = spool is None
        self._spool = spool
        if spool is None and config.spool_dir is not None:
            self._spool = Spool(config.spool_dir, config.spool_max_bytes)
        # Log lines written and not answered for yet: how many batches hold events of each.
        self._lines: dict[str, int] = {}
        self._answered: list[str] = []  # lines answered for since the last acknowledgement

    @property
    def spooling(self) -> bool:
        return self._spool is not None

    def open(self, outbox: Outbox, *, log_adopted: bool) -> str | None:
        """Once per process: claim a spool directory, and queue (first) what dead processes
        left in it, with a line each when ``log_adopted``. Why the spool is off, when it
        cannot be used."""
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
        self._take_over(found, spool, outbox, log_adopted=log_adopted)
        return None

    def adopt_orphans(self, outbox: Outbox, *, log_adopted: bool) -> None:
        """Queue (first) what processes that died since left in the spool."""
        spool = self._spool
        if spool is None or not self._opened:
            return
        try:
            found = spool.adopt()
        except Exception:
            logger.exception("doow-serverless: could not look for a dead process's batches")
            return
        self._take_over(found, spool, outbox, log_adopted=log_adopted)

    def _take_over(
        self, found: list[SpooledBatch], spool: Spool, outbox: Outbox, *, log_adopted: bool
    ) -> None:
        if not found:
            return
        batches = self._each_event_once(found, spool)
        outbox.adopt(batches)
        logger.info(
            "doow-serverless: %d event(s) left unsent by a process that died are sent first",
            sum(len(batch) for batch in batches),
        )
        if log_adopted and self._log:
            with self._logging:
                for batch in batches:
                    self._write_line(batch, ADOPTED)

    # -- a flush ----------------------------------------------------------------------------

    def before_sending(
        self, outbox: Outbox, refused: list[Unencodable], until: Deadline | None
    ) -> None:
        """Before a flush sends anything: settle the ids of queued events in batches, write
        a line for each batch that has none (write-ahead: however long it takes, as it is
        the last resort; it is this flush's new events, since each flush writes them), then
        spool each batch not spooled yet, oldest first, until ``until`` (None: all)."""
        if self._log_ahead:
            self._write_lines(outbox, refused, WRITE_AHEAD)
        if self._spool is None:
            return
        if not self._spooling.acquire(timeout=-1 if until is None else until.remaining()):
            return  # the deadline watch is spooling: it spools these too
        try:
            for batch in self._waiting(outbox, refused, until, _unspooled):
                self.spool(batch)
        finally:
            self._spooling.release()

    def before_request(self, batch: Batch, until: Deadline) -> None:
        """The batch about to be sent is kept first: its line if it has none (write-ahead),
        then the spool, unless the deadline watch holds the spool past ``until`` (it writes
        a line for batches in flight)."""
        if self._log_ahead and not batch.logged:
            with self._logging:
                self._write_line(batch, WRITE_AHEAD)
        if (
            self._spool is not None
            and not batch.spool_files
            and self._spooling.acquire(timeout=until.remaining())
        ):
            try:
                self.spool(batch)
            finally:
                self._spooling.release()

    def _write_lines(self, outbox: Outbox, refused: list[Unencodable], why: str) -> None:
        """A line for each waiting batch that has none, pending events formed into batches
        first, however long it takes (after another thread's lines, if it is writing)."""
        with self._logging:
            for batch in self._waiting(outbox, refused, None, _unlogged):
                self._write_line(batch, why)

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
        """A batch split in two: each half gets a file, else keeps a hold on the whole's;
        both hold its log lines."""
        with self._lock:
            for name in batch.log_lines:
                self._lines[name] = self._lines.get(name, 0) + len(halves)
        for half in halves:
            half.log_lines = list(batch.log_lines)
            half.logged = batch.logged
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
        """A batch answered for by the server (or split): its holds on its files and lines
        go; a line no batch holds any more is answered for."""
        batch.settled = True
        names, batch.spool_files = batch.spool_files, []
        if self._spool is not None:
            for name in names:
                self._spool.discard(name)
        lines, batch.log_lines = batch.log_lines, []
        with self._lock:
            for name in lines:
                held = self._lines.get(name, 0) - 1
                if held > 0:
                    self._lines[name] = held
                else:
                    self._lines.pop(name, None)
                    self._answered.append(name)

    def acknowledge(self) -> None:
        """Write one line naming the lines answered for since the last such line."""
        with self._lock:
            answered, self._answered = self._answered, []
        if answered and not write_acks(answered):
            logger.debug("doow-serverless: could not write the acknowledgement line")

    def log_waiting(self, outbox: Outbox, why: str, refused: list[Unencodable]) -> None:
        """At the end of a serverless flush: a line for each waiting batch that has none,
        spooled or not (a sandbox reclaimed while idle takes its ``/tmp`` along; its logs
        outlive it), however long it takes."""
        if self._log:
            self._write_lines(outbox, refused, why)

    # -- the deadline watch, and shutdown --------------------------------------------------

    def persist(self, outbox: Outbox, why: str, refused: list[Unencodable]) -> None:
        """A line for everything queued or in flight, and the spool for what is queued,
        sending nothing: the process may die soon (or another invocation's deadline may
        take it down with a flush in flight)."""
        self.open(outbox, log_adopted=True)
        if self._log:
            with self._logging:
                for batch in self._waiting(outbox, refused, None, _unlogged):
                    self._write_line(batch, why)
                for batch in outbox.in_flight():
                    self._write_line(batch, IN_FLIGHT)
        with self._spooling:
            for batch in self._waiting(outbox, refused, None, _unspooled):
                self.spool(batch)

    def hand_over(self, outbox: Outbox, why: str, refused: list[Unencodable]) -> tuple[int, int]:
        """At shutdown: leave what is left in the spool (a program with none spools in
        the user's state directory, ``handover_dir``), else in log lines. The events kept,
        and those that could not be."""
        if self._spool is None and self._config.handover_dir is not None and len(outbox):
            self._spool = self._handover_spool(self._config.handover_dir)
        with self._spooling, self._logging:
            for batch in self._waiting(outbox, refused, None, _unspooled):
                self.spool(batch)
            if self._log:
                for batch in self._waiting(outbox, refused, None, _unsaved):
                    self._write_line(batch, why)
            kept = lost = 0
            for batch in outbox.claim_all(self._config.attribution, refused):
                outbox.hand_over(batch, persisted=batch.saved)
                if batch.saved:
                    kept += len(batch)
                else:
                    lost += len(batch)
        self.acknowledge()
        return kept, lost

    def deliver_by_log(self, outbox: Outbox, refused: list[Unencodable]) -> int:
        """Logs-only delivery: a line for every queued batch that has none, then each is
        given up here, the log being its way to Doow (a forwarder sends it). The events
        given up; those that could not be written stay queued."""
        given_up = 0
        with self._logging:
            for batch in self._waiting(outbox, refused, None, _unlogged):
                self._write_line(batch, LOGS_ONLY)
            for batch in outbox.claim_all(self._config.attribution, refused):
                if batch.logged:
                    self.settled(batch)  # no spool file or acknowledgement is owed for it
                    outbox.hand_over(batch, persisted=True)
                    given_up += len(batch)
                else:
                    outbox.release(batch)
        return given_up

    # -- helpers ----------------------------------------------------------------------------

    def _handover_spool(self, directory: str) -> Spool | None:
        """A spool claimed only to leave batches in (adopting nothing at shutdown)."""
        spool = Spool(directory, self._config.spool_max_bytes)
        try:
            spool.open(adopt=False)
        except Exception as exc:  # SpoolUnavailable, or a failure no one foresaw
            logger.warning("doow-serverless: cannot keep events in %s: %s", directory, exc)
            return None
        return spool

    def _write_line(self, batch: Batch, why: str) -> None:
        """Write the batch's line, unless it has one; the caller holds ``_logging``."""
        if batch.logged:
            return
        reason = redact(why, self._config.api_key)
        documents = batch.documents if batch.encoded is None else None  # read back if needed
        if not write_unsent(batch.batch_id, documents, reason, encoded=batch.encoded):
            return
        with self._lock:
            self._lines[batch.batch_id] = self._lines.get(batch.batch_id, 0) + 1
        batch.log_lines.append(batch.batch_id)
        batch.logged = batch.saved = True
        if batch.settled:  # answered for meanwhile (by another thread's flush)
            self.settled(batch)

    def _waiting(
        self,
        outbox: Outbox,
        refused: list[Unencodable],
        until: Deadline | None,
        needs: Callable[[Batch], bool],
    ) -> Iterator[Batch]:
        """The waiting batches that ``needs`` picks, then new ones formed from pending
        events one at a time, oldest first, while ``until`` allows (None: all of them)."""
        attribution = self._config.attribution
        for batch in outbox.waiting():
            if until is not None and until.expired():
                return
            if needs(batch):
                yield batch
        while until is None or not until.expired():
            formed = outbox.form_one(attribution, refused)
            if formed is None:
                return
            yield formed

    def close(self) -> None:
        if self._spool is not None and self._owns_spool:
            self._spool.close()

    def forget_after_fork(self) -> None:
        """In a forked child: the spool directory, and its lock, are the parent's."""
        self._lock = threading.Lock()
        self._logging = threading.Lock()
        self._spooling = threading.Lock()
        self._opened = False
        self._lines = {}
        self._answered = []
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


def _unlogged(batch: Batch) -> bool:
    return not batch.logged


def _unspooled(batch: Batch) -> bool:
    return not batch.spool_files


def _unsaved(batch: Batch) -> bool:
    return not batch.saved

"""The delivery engine: send a queue's batches within a deadline, keep what is not delivered.

One engine for every caller: ``DoowTracker`` (its flushes, the deadline watch, shutdown)
and ``replay``. A flush claims batches from the outbox one at a time (other threads may
claim others), keeps each first where a kill cannot take it (see ``_durability``), sends
it with every timeout and backoff clipped to the deadline, and settles it by the answer:
delivered, refused for good, split in two, or kept for the next flush with the same
bytes. It never raises into its caller; what must be reported goes to ``report``.

On a serverless platform a flush also leaves nothing undelivered without a durable copy,
however short its deadline: the writes that keep events are not clipped to the time
given for sending (the invocation's reserve pays for them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from .._core.config import TrackerConfig, key_hint
from .._core.constants import LOGGER_NAME
from .._core.deadline import Deadline
from .._core.errors import (
    DoowAuthError,
    DoowConfigError,
    DoowDeliveryError,
    DoowError,
    DoowRejectedError,
    Rejection,
)
from .._delivery.outbox import Batch, Outbox, Unencodable
from .._delivery.send import (
    MIN_ATTEMPT_S,
    ClientRefused,
    Delivered,
    Outcome,
    Refused,
    TooLarge,
    Unsent,
    send_batch,
)
from .._delivery.transport import Transport
from .._durability.carryover import CarryOver
from .._durability.spool import Spool

logger = logging.getLogger(LOGGER_NAME)

Report = Callable[[DoowError, int], None]

# Outside serverless platforms, spooling what is queued before sending may take at most
# this share of a flush's budget (on them, keeping is not clipped at all).
SPOOL_AHEAD_SHARE = 0.5
# With write-ahead off, the share of a serverless flush's budget (at most
# MAX_LOG_TIME_S) kept back for the lines of what could not be sent, so the last resort
# rarely runs past the budget.
LOG_SHARE = 0.1
MAX_LOG_TIME_S = 0.05
# How often a serverless process looks for the spool of a process that died since.
ADOPT_EVERY_S = 5.0


class FlushResult(NamedTuple):
    """What one flush did. ``pending`` events are still queued and go out at the next flush."""

    delivered: int
    rejected: int
    pending: int
    elapsed: float
    # Why events are still pending when they are; otherwise the last refusal, if any.
    error: DoowError | None = None

    @property
    def ok(self) -> bool:
        """True when nothing is left to send."""
        return self.pending == 0


class _Step(NamedTuple):
    """What settling one batch did, for the flush's totals."""

    delivered: int
    rejected: int
    error: DoowError | None = None  # why sending stopped in this flush
    rejection: DoowRejectedError | None = None


class Sender:
    """Sends ``outbox``'s batches with ``config`` over ``transport``; thread-safe.

    ``serverless``: the process may be frozen, then killed, after any flush, so a flush
    keeps what it leaves undelivered (a log line, the spool) before it returns, and
    batches adopted from a dead process's spool get a line when adopted.

    ``spool``: one the caller opened and writes batches to before queueing them (the
    daemon): files are removed from it as their batches are answered for, and it stays
    open when the sender closes.
    """

    def __init__(
        self,
        config: TrackerConfig,
        transport: Transport,
        outbox: Outbox,
        *,
        report: Report,
        serverless: bool,
        spool: Spool | None = None,
    ) -> None:
        self._config = config
        self._transport = transport
        self._outbox = outbox
        self._report = report
        self._serverless = serverless
        self._carry_over = CarryOver(config, spool)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._stopped: DoowDeliveryError | None = None  # why sending stopped for good
        self._not_before = 0.0
        self._adopted_at = time.monotonic()

    @property
    def spooling(self) -> bool:
        return self._carry_over.spooling

    @property
    def stopped(self) -> bool:
        """Sending stopped for good (the key or the URL was refused)."""
        return self._stopped is not None

    def open(self) -> None:
        """Adopt what dead processes left in the spool (once; later calls do nothing)."""
        problem = self._carry_over.open(self._outbox, log_adopted=self._serverless)
        if problem is not None:
            self._report(DoowConfigError(f"the spool is off: {problem}"), logging.WARNING)

    def adopt(self, batches: list[Batch]) -> None:
        """Queue batches whose event ids are settled already (replay), to be sent first."""
        self._outbox.adopt(batches)

    # -- a flush ----------------------------------------------------------------------------

    def flush(self, deadline: Deadline, keep_until: Deadline | None = None) -> FlushResult:
        """Send what is queued, and wait for batches in flight, until ``deadline``.

        On a serverless platform, writing what is not delivered (lines, spool) is bounded
        by ``keep_until`` instead (None: as long as it takes), not by ``deadline``.
        """
        started = time.monotonic()
        delivered = rejected = 0
        rejection: DoowRejectedError | None = None
        self.open()
        if self._serverless and started - self._adopted_at >= ADOPT_EVERY_S:
            # Other processes share this spool (Managed Instances, an Azure app's workers):
            # one that died since is adopted by a live one, not only by the next to start.
            self._adopted_at = started
            self._carry_over.adopt_orphans(self._outbox, log_adopted=True)
        # Events too large to ever be sent, found while forming batches: refused locally.
        refused: list[Unencodable] = []
        ahead = (
            keep_until if self._serverless else Deadline(deadline.remaining() * SPOOL_AHEAD_SHARE)
        )
        self._carry_over.before_sending(self._outbox, refused, ahead)
        sending = deadline
        config = self._config
        if self._serverless and config.log_unsent and not config.log_ahead:
            keep = min(deadline.remaining() * LOG_SHARE, MAX_LOG_TIME_S)
            sending = Deadline(deadline.remaining() - keep)
        self._wait_out_rate_limit(sending)
        error: DoowError | None = self._blocked_reason()
        while error is None:
            if sending.expired():
                if len(self._outbox):
                    error = DoowDeliveryError("the flush budget ran out")
                break
            batch = self._outbox.claim(config.attribution, refused)
            if batch is None:
                if self._outbox.wait_for_others(sending.remaining()):
                    continue
                break
            self._carry_over.before_request(batch, sending)
            batch.sealed = True
            try:
                outcome: Outcome = send_batch(
                    batch,
                    config=config,
                    transport=self._transport,
                    deadline=sending,
                    sleep=self._closing.wait,
                )
            except Exception as exc:
                # A bug below, or a library error no one foresaw: the batch is kept for the
                # next flush, never stranded in flight, and nothing reaches the caller.
                logger.debug("doow-serverless: sending failed unexpectedly", exc_info=True)
                outcome = Unsent(f"unexpected {type(exc).__name__} while sending", 1)
            step = self._settle(batch, outcome)
            delivered += step.delivered
            rejected += step.rejected
            rejection = step.rejection or rejection
            error = step.error
        if self._serverless and len(self._outbox):
            why = str(error or "the flush budget ran out")
            self._carry_over.log_waiting(self._outbox, why, refused)
        self._carry_over.acknowledge()
        if refused:
            rejected += len(refused)
            rejection = rejection or self.refused_locally(refused)
        return FlushResult(
            delivered=delivered,
            rejected=rejected,
            pending=len(self._outbox),
            elapsed=time.monotonic() - started,
            error=error or rejection,
        )

    def _settle(self, batch: Batch, outcome: Outcome) -> _Step:
        """Account for how one batch's sending ended; report what must be reported."""
        halves: tuple[Batch, Batch] | None = None
        if isinstance(outcome, TooLarge) and len(batch) > 1:
            halves = batch.halves()
            self._carry_over.split(batch, halves)  # the halves first: a kill loses nothing
        if isinstance(outcome, (Delivered, Refused, TooLarge)):
            self._carry_over.settled(batch)
        if isinstance(outcome, Delivered):
            self._outbox.settle(batch, rejected=len(outcome.rejections))
            accepted = len(batch) - len(outcome.rejections)
            if not outcome.rejections:
                return _Step(accepted, 0)
            return _Step(
                accepted,
                len(outcome.rejections),
                rejection=self._rejected(
                    outcome.rejections,
                    f"the server refused {len(outcome.rejections)} of {len(batch)} events in "
                    f"batch {batch.batch_id}: {_summarize(outcome.rejections)}",
                    status=207,
                    batch=batch,
                ),
            )
        if isinstance(outcome, TooLarge):
            if halves is not None:
                self._outbox.replace(batch, halves)
                return _Step(0, 0)
            self._outbox.settle(batch, rejected=1)
            only = batch.event_ids[0]
            return _Step(
                0,
                1,
                rejection=self._rejected(
                    [Rejection(only, "too large (413)")],
                    f"the server refused event {only} as too large (413)",
                    status=413,
                    batch=batch,
                ),
            )
        if isinstance(outcome, Refused):
            self._outbox.settle(batch, rejected=len(batch))
            return _Step(
                0,
                len(batch),
                rejection=self._rejected(
                    [Rejection(event_id, outcome.message) for event_id in batch.event_ids],
                    f"the server refused batch {batch.batch_id} of {len(batch)} events for "
                    f"good (HTTP {outcome.status}): {outcome.message}",
                    status=outcome.status,
                    batch=batch,
                ),
            )
        self._outbox.release(batch)
        if isinstance(outcome, ClientRefused):
            return _Step(0, 0, error=self._stop_sending(outcome.status, outcome.message))
        if outcome.not_before is not None:
            with self._lock:
                self._not_before = max(self._not_before, outcome.not_before)
        error = DoowDeliveryError(
            f"batch {batch.batch_id} of {len(batch)} events not delivered after "
            f"{outcome.attempts} attempt(s), kept for the next flush: {outcome.reason}",
            batch_id=batch.batch_id,
            event_count=len(batch),
        )
        self._report(error, logging.WARNING)
        return _Step(0, 0, error=error)

    def _rejected(
        self,
        rejections: list[Rejection],
        message: str,
        *,
        status: int | None = None,
        batch: Batch | None = None,
    ) -> DoowRejectedError:
        """Report events refused for good (the outbox has counted them)."""
        error = DoowRejectedError(
            message,
            rejections=rejections,
            status=status,
            batch_id=None if batch is None else batch.batch_id,
        )
        self._report(error, logging.WARNING)
        return error

    def refused_locally(self, refused: list[Unencodable]) -> DoowRejectedError:
        return self._rejected(
            [Rejection(item.event_id, item.reason) for item in refused],
            f"{len(refused)} event(s) that can never be sent were refused locally: "
            f"{refused[0].reason}",
        )

    def _wait_out_rate_limit(self, deadline: Deadline) -> None:
        """A server's Retry-After that a previous flush could not wait out is waited out by
        this one when it ends inside its budget, as a send waits within its own; a longer
        one ends the flush at once (``_blocked_reason``)."""
        wait = self._not_before - time.monotonic()
        if wait > 0 and len(self._outbox) and wait + MIN_ATTEMPT_S < deadline.remaining():
            self._closing.wait(wait)

    def _blocked_reason(self) -> DoowError | None:
        if self._config.send_blocker:
            if len(self._outbox):
                return DoowConfigError(f"events kept, not sent: {self._config.send_blocker}")
            return None
        if self._stopped is not None:
            return self._stopped
        wait = self._not_before - time.monotonic()
        if wait > 0 and len(self._outbox):
            return DoowDeliveryError(f"rate limited by the server for {wait:.1f}s more")
        return None

    def _stop_sending(self, status: int, message: str) -> DoowDeliveryError:
        """Stop sending for good after 401/403/404, keeping the events; reported once."""
        if status == 404:
            error: DoowDeliveryError = DoowDeliveryError(
                f"the endpoint {self._config.ingest_url} answered 404 ({message}); check the "
                "endpoint setting. Sending is stopped for this tracker and events are kept",
                status=404,
            )
        else:
            error = DoowAuthError(
                f"the API key {key_hint(self._config.api_key)} was refused ({status}): "
                f"{message}; sending is stopped for this tracker and events are kept",
                status=status,
            )
        with self._lock:
            first = self._stopped is None
            if first:
                self._stopped = error
        if first:
            self._report(error, logging.ERROR)
        return self._stopped or error

    # -- sending nothing ----------------------------------------------------------------------

    def keep(self, keep_until: Deadline | None = None) -> None:
        """What a flush does before sending, without the sending: a line for each batch that
        has none (write-ahead on), then the spool (until ``keep_until``)."""
        self.open()
        refused: list[Unencodable] = []
        try:
            self._carry_over.before_sending(self._outbox, refused, keep_until)
        except Exception:
            logger.exception("doow-serverless: could not keep the queued events")
        if refused:
            self.refused_locally(refused)

    def deliver_by_log(self) -> int:
        """Logs-only delivery (see ``CarryOver.deliver_by_log``); the events given up."""
        refused: list[Unencodable] = []
        given_up = self._carry_over.deliver_by_log(self._outbox, refused)
        if refused:
            self.refused_locally(refused)
        return given_up

    def persist(self, why: str) -> None:
        """Keep everything queued or in flight (spool, log lines), sending nothing."""
        refused: list[Unencodable] = []
        try:
            self._carry_over.persist(self._outbox, why, refused)
        except Exception:
            logger.exception("doow-serverless: could not persist the queued events")
        if refused:
            self.refused_locally(refused)

    def hand_over(self, why: str) -> tuple[int, int]:
        """At shutdown: leave what was not delivered in the spool, else in log lines. The
        events kept, and those that could not be."""
        refused: list[Unencodable] = []
        kept, lost = self._carry_over.hand_over(self._outbox, why, refused)
        if refused:
            self.refused_locally(refused)
        return kept, lost

    # -- lifecycle ----------------------------------------------------------------------------

    def stop_waiting(self) -> None:
        """Cut short any backoff or Retry-After wait in progress (shutdown)."""
        self._closing.set()

    def close(self, *, keep_transport: bool = False) -> None:
        """Close the spool and, unless ``keep_transport``, the connections."""
        if not keep_transport:
            self._transport.close()
        self._carry_over.close()

    def forget_after_fork(self, outbox: Outbox) -> None:
        """In a forked child: the queue, threads, sockets and spool are the parent's."""
        self._outbox = outbox
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._carry_over.forget_after_fork()
        forget = getattr(self._transport, "forget_after_fork", None)
        if forget is not None:
            forget()


def _summarize(rejections: list[Rejection]) -> str:
    shown = "; ".join(f"{item.event_id}: {item.reason}" for item in rejections[:3])
    more = len(rejections) - 3
    return shown + (f"; and {more} more" if more > 0 else "")

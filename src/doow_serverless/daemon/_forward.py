"""Forwarding what the daemon holds, with the library's delivery engine (``Sender``).

One thread decides when: once ``flush_at`` events are held or the oldest has waited
``flush_interval``. With a backlog, a flush runs in up to :data:`STREAMS` threads at once,
each claiming its own batches, so that while the server handles one request the next are
on their way. The engine
combines the clients' batches into requests of up to 500 events, keeps each event's id,
and removes a spool file once the server has answered for all its events. After a flush
that leaves events undelivered (upstream down, rate limited) it waits, longer each time
up to :data:`MAX_RETRY_WAIT_S`, before trying again.

A reload (a rotated key, a new endpoint) replaces the engine between two flushes: the
batches held stay where they are, sent once, to the new place. Stopping gives a last
flush until the grace period ends; whatever is left stays in the spool for the next start.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from .._client.sender import FlushResult, Report, Sender
from .._core.config import TrackerConfig
from .._core.constants import LOGGER_NAME, MAX_BATCH_EVENTS
from .._core.deadline import Deadline
from .._delivery.outbox import Outbox
from .._delivery.transport import HttpTransport, Transport
from .._durability.spool import Spool
from ._queue import HeldQueue

logger = logging.getLogger(LOGGER_NAME)

# How long one flush of the loop may take (it ends sooner when everything is sent).
FLUSH_SLICE_S = 30.0
# Requests in flight at once, at most (one while less than two full requests are held).
STREAMS = 4
FIRST_RETRY_WAIT_S = 0.5
MAX_RETRY_WAIT_S = 5.0  # the engine's own backoff cap


class Forwarder:
    def __init__(
        self,
        config: TrackerConfig,
        *,
        outbox: Outbox,
        spool: Spool,
        queue: HeldQueue,
        report: Report,
        transport: Callable[[], Transport] = HttpTransport,
    ) -> None:
        self._outbox = outbox
        self._spool = spool
        self._queue = queue
        self._report = report
        self._new_transport = transport
        self._config = config
        self._sender = self._new_sender(config)
        self._reloaded: TrackerConfig | None = None
        self._wake = threading.Event()  # a batch was queued, or a reload or a stop came
        self._control = threading.Event()  # a reload or a stop came
        self._stop_at: Deadline | None = None
        self._lock = threading.Lock()
        # A daemon thread: a stop that outlasts the grace period leaves it, and its request
        # in progress, behind (what it holds is in the spool).
        self._thread = threading.Thread(target=self._run, name="doow-daemon-forwarder", daemon=True)
        self.kept = 0  # events left in the spool at the stop
        self.lost = 0  # events that could be neither delivered nor kept

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def reload(self, config: TrackerConfig) -> None:
        """Forward with ``config`` from the next flush on; a flush in progress is cut short
        (its waits end; a request in progress finishes)."""
        with self._lock:
            self._reloaded = config
            self._sender.stop_waiting()
        self._control.set()
        self._wake.set()

    def stop(self, grace: float) -> bool:
        """Stop after a last flush of at most ``grace`` seconds; False when forwarding
        did not end in time (what it holds is in the spool either way)."""
        with self._lock:
            self._stop_at = Deadline(grace)
            self._sender.stop_waiting()
        self._control.set()
        self._wake.set()
        self._thread.join(grace + 1.0)
        return not self._thread.is_alive()

    # -- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._forward_until_stopped()
            self._last_flush()
        except Exception:  # a bug below: what is held is in the spool all the same
            logger.exception("doow-serverless daemon: forwarding failed")
        finally:
            self._sender.stop_waiting()
            self.kept, self.lost = self._sender.hand_over("the daemon stopped")
            self._sender.close()

    def _forward_until_stopped(self) -> None:
        failures = 0
        since: float | None = None  # when the oldest batch held now was queued
        while self._stop_at is None:
            self._apply_reload()
            self._queue.refill()
            held = len(self._outbox)
            now = time.monotonic()
            if held == 0:
                since = None
                _wait(self._wake, None)
                continue
            since = now if since is None else since
            config = self._config
            waited = now - since
            if not config.enabled or (held < config.flush_at and waited < config.flush_interval):
                _wait(self._wake, config.flush_interval - waited if config.enabled else None)
                continue
            failed = self._flush(Deadline(FLUSH_SLICE_S))
            since = None
            if failed:
                failures += 1
                _wait(self._control, _retry_wait(failures))
            else:
                failures = 0

    def _last_flush(self) -> None:
        stop_at = self._stop_at
        assert stop_at is not None
        self._apply_reload()
        while not stop_at.expired() and self._config.enabled:
            self._queue.refill()
            if not len(self._outbox):
                return
            if self._flush(stop_at):
                time.sleep(min(FIRST_RETRY_WAIT_S, stop_at.remaining()))

    def _flush(self, deadline: Deadline) -> bool:
        """One flush, in as many threads as there are full requests held (at most
        :data:`STREAMS`); whether it left events undelivered because sending failed."""
        sender = self._sender
        results: list[FlushResult] = []
        streams = min(STREAMS, 1 + len(self._outbox) // MAX_BATCH_EVENTS)
        helpers = [
            threading.Thread(target=lambda: results.append(sender.flush(deadline)), daemon=True)
            for _ in range(streams - 1)
        ]
        for helper in helpers:
            helper.start()
        results.append(sender.flush(deadline))
        for helper in helpers:
            helper.join()
        return len(self._outbox) > 0 and any(result.error is not None for result in results)

    def _apply_reload(self) -> None:
        with self._lock:
            config, self._reloaded = self._reloaded, None
            if config is None:
                return
            old, self._sender = self._sender, self._new_sender(config)
            self._config = config
            self._control.clear()
        old.close()

    def _new_sender(self, config: TrackerConfig) -> Sender:
        return Sender(
            config,
            self._new_transport(),
            self._outbox,
            report=self._report,
            serverless=False,
            spool=self._spool,
        )


def _wait(event: threading.Event, timeout: float | None) -> None:
    event.wait(timeout)
    event.clear()


def _retry_wait(failures: int) -> float:
    wait: float = min(MAX_RETRY_WAIT_S, FIRST_RETRY_WAIT_S * 2.0 ** (failures - 1))
    return wait * random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not a secret

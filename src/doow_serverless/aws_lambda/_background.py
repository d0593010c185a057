"""Background delivery on Lambda Managed Instances, and the end of the environment.

There, several processes each serve one invocation at a time, the environment is never
frozen, and an invocation's timeout is not enforced by a kill. So the response need not
wait for Doow: the wrapper keeps each invocation's events (log lines, the spool in the
shared ``/tmp``) before the response goes back, and one thread of the process sends them
afterwards, in batches, as they accumulate. Event ids are derived from the request ids as
in every mode.

At shutdown the environment gets SIGTERM. A thread waits for it (the signal is blocked in
the other threads, so it is delivered even while the runtime client waits in native
code), gives the last flush ``grace`` seconds, leaves the rest in the spool and log lines,
and then lets SIGTERM end the process as it would have.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable

from .._client.tracker import DoowTracker
from .._core.constants import LOGGER_NAME
from .._invocation.engine import Invocation

logger = logging.getLogger(LOGGER_NAME)

# How long one background flush may take (nothing freezes or kills the process meanwhile:
# this bounds what a hanging endpoint holds back, not an invocation).
FLUSH_TIMEOUT_S = 30.0
# Wake for what is queued at least this often, even when no invocation ends.
INTERVAL_S = 1.0
# What the last flush may take after SIGTERM (AWS's own shutdown leaves ~500 ms to it).
SHUTDOWN_GRACE_S = 0.4


class Background:
    """One sender thread per process, woken when an invocation ends."""

    def __init__(self, tracker: DoowTracker) -> None:
        self._tracker = tracker
        self._wake = threading.Event()
        self._stopped = threading.Event()
        # SIGTERM blocked first: a thread started before inherits it unblocked, and the
        # signal, delivered to that thread, would end the process with nothing kept.
        on_sigterm(self.stop)
        self._thread = threading.Thread(target=self._run, name="doow-background", daemon=True)
        self._thread.start()

    def hand_over(self, invocation: Invocation) -> None:
        """The handler returned: keep its events now; they are sent from this thread."""
        invocation.release()
        self._wake.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(INTERVAL_S)
            self._wake.clear()
            if self._stopped.is_set():
                return
            try:
                self._tracker.flush(FLUSH_TIMEOUT_S)
            except Exception:  # the thread must outlive any bug below it
                logger.exception("doow-serverless: background flush failed")

    def stop(self) -> None:
        """SIGTERM: the last flush within the grace period; the rest is kept."""
        self._stopped.set()
        self._wake.set()
        self._tracker.shutdown(timeout=SHUTDOWN_GRACE_S)


_on_sigterm: list[Callable[[], None]] = []
_sigterm_lock = threading.Lock()


def on_sigterm(action: Callable[[], None]) -> None:
    """Run ``action`` when the process gets SIGTERM, then end it as SIGTERM would.

    Installed once per process, from the main thread (while the function initialises):
    SIGTERM is blocked in every thread but one that waits for it.
    """
    with _sigterm_lock:
        _on_sigterm.append(action)
        if len(_on_sigterm) > 1:
            return
    if threading.current_thread() is not threading.main_thread():
        logger.warning("doow-serverless: SIGTERM is not handled (set up outside the main thread)")
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    threading.Thread(target=_wait_for_sigterm, name="doow-sigterm", daemon=True).start()


def _wait_for_sigterm() -> None:
    signal.sigwait({signal.SIGTERM})
    for action in list(_on_sigterm):
        try:
            action()
        except Exception:
            logger.exception("doow-serverless: shutting down failed")
    # End as SIGTERM would have: delivered again, to this thread, which no longer blocks it.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.5)  # a handler of the application's took it instead: end here
    os._exit(128 + signal.SIGTERM)

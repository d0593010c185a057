"""Periodic flushing for long-running processes (never started on a serverless platform).

One daemon thread, started by the tracker on its first ``track()``, not by its
constructor. It flushes every ``interval`` seconds, or sooner when woken because
``flush_at`` events are waiting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .._core.constants import LOGGER_NAME

logger = logging.getLogger(LOGGER_NAME)


class PeriodicFlusher:
    def __init__(self, flush: Callable[[], object], interval: float) -> None:
        self._flush = flush
        self._interval = interval if interval > 0 else None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="doow-serverless-flusher", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self._flush()
            except Exception:  # the thread must outlive any bug below it
                logger.exception("doow-serverless: background flush failed")

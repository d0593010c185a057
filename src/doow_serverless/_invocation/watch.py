"""The guard against a kill at the deadline while the handler still runs.

A platform kills an invocation that reaches its deadline, and the events its handler
tracked so far would die with the process: the flush that would send or spool them runs
only after the handler returns. So each wrapped invocation is watched: if it is still
running shortly before its deadline, one thread of the SDK's writes the tracker's queued
events to the spool (or, without one, to log lines) while the handler goes on: half a
second before the last moment, and again at it. The events
stay queued too; if the handler does return in time, its flush sends them as usual.

One thread serves every invocation of the process, started by the first one.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
import time
from typing import TYPE_CHECKING

from .._core.constants import LOGGER_NAME

if TYPE_CHECKING:
    from .._client.tracker import DoowTracker

logger = logging.getLogger(LOGGER_NAME)

# Persisting a few batches takes a millisecond or two, but a backlog of thousands of events
# takes a few hundred: the watch fires twice, EARLY_S before the last moment (most of the
# work), then at it (what was tracked since, and what the first pass did not finish).
MIN_MARGIN_S = 0.1
EARLY_S = 0.5


class DeadlineWatch:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._due: dict[int, tuple[list[float], DoowTracker]] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._wakes_at = math.inf

    def arm(self, tracker: DoowTracker, times: list[float]) -> int:
        """Persist ``tracker``'s queue at each of ``times`` (monotonic, ascending) unless
        disarmed first."""
        with self._changed:
            token = next(self._tokens)
            self._due[token] = (times, tracker)
            fire_at = times[0]
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="doow-deadline-watch", daemon=True
                )
                self._thread.start()
            elif fire_at < self._wakes_at:
                self._changed.notify()
            return token

    def disarm(self, token: int) -> None:
        with self._changed:
            self._due.pop(token, None)

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                trackers = {}
                for token, (times, tracker) in list(self._due.items()):
                    if times[0] <= now:
                        trackers[id(tracker)] = tracker
                        while times and times[0] <= now:
                            times.pop(0)
                        if not times:
                            del self._due[token]
                if not trackers:
                    self._wakes_at = min(
                        (times[0] for times, _ in self._due.values()), default=math.inf
                    )
                    wait = None if self._wakes_at == math.inf else self._wakes_at - now
                    self._changed.wait(wait)
                    continue
            for tracker in trackers.values():
                tracker.persist("the invocation was still running near its deadline")

    def forget_after_fork(self) -> None:
        """In a forked child the thread does not exist; the parent's invocations are not ours."""
        self._changed = threading.Condition()
        self._due = {}
        self._thread = None
        self._wakes_at = math.inf


deadline_watch = DeadlineWatch()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=deadline_watch.forget_after_fork)


def watch(tracker: DoowTracker, remaining: float | None, reserve: float) -> int | None:
    """Guard an invocation that has ``remaining`` seconds; a token for :func:`unwatch`."""
    if remaining is None or not math.isfinite(remaining):
        return None
    now = time.monotonic()
    last = now + remaining - max(reserve, MIN_MARGIN_S)
    # Nothing is tracked yet at the start: an early pass due already would have no work.
    times = [last - EARLY_S, last] if last - EARLY_S > now else [last]
    return deadline_watch.arm(tracker, times)


def unwatch(token: int | None) -> None:
    if token is not None:
        deadline_watch.disarm(token)

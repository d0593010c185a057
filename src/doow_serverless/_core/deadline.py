"""A point in time that every timeout, backoff and Retry-After of a flush is clipped to."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


class Deadline:
    __slots__ = ("_clock", "at")

    def __init__(self, seconds: float, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.at = clock() + max(seconds, 0.0)

    def remaining(self) -> float:
        return max(self.at - self._clock(), 0.0)

    def expired(self) -> bool:
        return self._clock() >= self.at

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f}s)"

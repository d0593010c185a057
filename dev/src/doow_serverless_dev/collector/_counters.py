"""Request and connection counters, kept in memory since the start (or the last reset)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Counter[str] = Counter()
        self._statuses: Counter[str] = Counter()
        # Not counters: ingest requests being handled now (a held hang is not), and those a
        # hang step holds now; kept by reset.
        self._in_progress = 0
        self._held = 0

    def add(self, **amounts: int) -> None:
        with self._lock:
            self._values.update(amounts)

    def record_ingest_status(self, status: int | str) -> None:
        """One ingest request answered with ``status`` (or dropped: "hang", "reset")."""
        with self._lock:
            self._values["requests"] += 1
            self._statuses[str(status)] += 1

    def ingest_started(self) -> None:
        with self._lock:
            self._in_progress += 1

    def ingest_ended(self) -> None:
        with self._lock:
            self._in_progress -= 1

    def hold_started(self) -> None:
        with self._lock:
            self._held += 1

    def hold_ended(self) -> None:
        with self._lock:
            self._held -= 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            totals: dict[str, Any] = {
                name: self._values[name]
                for name in (
                    "accepted",
                    "duplicates",
                    "rejected",
                    "batches",
                    "requests",
                    "http_requests",
                    "connections",
                    "inflated_bytes",  # produced by decompressing gzip bodies
                )
            }
            totals["requests_by_status"] = dict(sorted(self._statuses.items()))
            totals["ingest_in_progress"] = self._in_progress
            totals["ingest_held"] = self._held
        return totals

    def reset(self) -> None:
        with self._lock:
            self._values.clear()
            self._statuses.clear()

"""The campaign's collector: stopped and restarted on the same port and database, its
counters summed over its runs, its fault plan set and cleared."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from doow_serverless_dev.collector import Collector

from .workload import REJECTED_LICENSE

_COUNTERS = ("accepted", "duplicates", "rejected", "batches", "requests", "connections")


class Endpoint:
    """The collector, which can be stopped and restarted on the same port and database."""

    def __init__(self, db_path: Path, api_key: str, idle_timeout: float) -> None:
        self._db_path = db_path
        self._api_key = api_key
        self._idle_timeout = idle_timeout
        self._collector: Collector | None = None
        self._port = 0
        self.restarts = 0
        self._totals: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()

    def start(self) -> None:
        for attempt in range(50):
            try:
                collector = Collector(
                    port=self._port,
                    db_path=self._db_path,
                    api_keys=[self._api_key],
                    idle_timeout=self._idle_timeout,
                    reject_licenses=[REJECTED_LICENSE],
                ).start()
            except OSError:
                if attempt == 49:
                    raise
                time.sleep(0.1)  # the port is still being released
                continue
            break
        if self._port:
            self.restarts += 1
        self._port = collector.port
        self._collector = collector

    def stop(self) -> None:
        collector, self._collector = self._collector, None
        if collector is None:
            return
        stats = collector.stats()
        self._totals.update({name: int(stats.get(name, 0)) for name in _COUNTERS})
        self._by_status.update(stats.get("requests_by_status", {}))
        collector.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def running(self) -> Collector:
        if self._collector is None:
            raise RuntimeError("the collector is stopped")
        return self._collector

    def plan(self, plan: Mapping[str, Any] | None) -> None:
        if plan is None:
            self.running.clear_faults()
        else:
            self.running.set_faults(json.loads(json.dumps(plan)))

    def steps_taken(self) -> int:
        """How many requests have taken a step of the current plan's script (0: stopped)."""
        if self._collector is None:
            return 0
        return int(self._collector.faults()["position"])

    def in_progress(self) -> int:
        """Ingest requests the collector is handling now, a held hang aside (0: stopped)."""
        if self._collector is None:
            return 0
        return int(self._collector.stats()["ingest_in_progress"])

    def held(self) -> int:
        """Ingest requests a hang step holds now (0: stopped)."""
        if self._collector is None:
            return 0
        return int(self._collector.stats()["ingest_held"])

    def in_flight(self) -> int:
        """Ingest requests the collector is handling or holding (a hang) now (0: stopped)."""
        return self.in_progress() + self.held()

    def stored(self) -> int:
        return int(self.running.stats()["events_stored"])

    def counters(self) -> dict[str, Any]:
        """Counters summed over every run of the collector so far (stopped ones included)."""
        totals = Counter(self._totals)
        by_status = Counter(self._by_status)
        if self._collector is not None:
            stats = self._collector.stats()
            totals.update({name: int(stats.get(name, 0)) for name in _COUNTERS})
            by_status.update(stats.get("requests_by_status", {}))
        return {**totals, "requests_by_status": dict(by_status), "restarts": self.restarts}

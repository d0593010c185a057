"""Everything one running collector holds, shared by its handler threads."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._auth import KeyCheck
from ._counters import Counters
from ._faults import FaultController
from ._ingest import Ingestor
from ._store import EventStore

DEFAULT_MAX_BODY_BYTES = 1_048_576
MAX_EVENTS_LIMIT = 1000


@dataclass
class CollectorState:
    store: EventStore
    keys: KeyCheck
    idle_timeout: float
    max_body_bytes: int
    reject_licenses: frozenset[str]
    counters: Counters = field(default_factory=Counters)
    faults: FaultController = field(default_factory=FaultController)
    stopping: threading.Event = field(default_factory=threading.Event)
    ingestor: Ingestor = field(init=False)

    def __post_init__(self) -> None:
        self.ingestor = Ingestor(self.store, self.counters, self.keys, self.reject_licenses)

    @classmethod
    def open(
        cls,
        db_path: str | Path | None,
        keys: KeyCheck,
        idle_timeout: float,
        max_body_bytes: int,
        reject_licenses: Iterable[str],
    ) -> CollectorState:
        return cls(
            store=EventStore(db_path),
            keys=keys,
            idle_timeout=idle_timeout,
            max_body_bytes=max_body_bytes,
            reject_licenses=frozenset(reject_licenses),
        )

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"events_stored": self.store.count()}
        stats.update(self.counters.snapshot())
        stats["metrics"] = self.store.summary()
        return stats

    def reset(self) -> None:
        """Forget every stored event and zero the counters (the fault plan stays)."""
        self.store.clear()
        self.counters.reset()

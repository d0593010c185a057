"""What a local collector stored, read from its SQLite file once it has stopped.

The layout is the collector's own (``doow_serverless/collector/_store.py``): ``events``
holds one row per stored event (``event_id`` is UNIQUE: resends are ignored), ``batches``
the raw body of every batch of which at least one event was stored, and ``refusals`` every
event the collector refused (207), with whether that 207 was the answer it sent.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoreSnapshot:
    quantities: dict[str, float]  # event id -> stored quantity
    rows: int  # event rows (more than len(quantities) would be a duplicate row)
    # event id -> how many stored batch bodies carried it (over 1: it was resent)
    received: Counter[str]
    # event id -> how many times the collector answered a 207 refusing it
    refused: Counter[str]

    @property
    def stored_ids(self) -> set[str]:
        return set(self.quantities)

    @property
    def refused_ids(self) -> set[str]:
        """Ids the collector refused in a 207 it sent: its own answers, not an inference."""
        return set(self.refused)


def read_store(db_path: Path) -> StoreSnapshot:
    with sqlite3.connect(db_path) as db:
        fetched = db.execute("SELECT event_id, quantity FROM events").fetchall()
        bodies = db.execute("SELECT body, gzipped FROM batches").fetchall()
        refusals = db.execute(
            "SELECT event_id FROM refusals WHERE answered AND event_id IS NOT NULL"
        ).fetchall()
    db.close()
    quantities = {str(event_id): float(quantity) for event_id, quantity in fetched}
    received: Counter[str] = Counter()
    for body, gzipped in bodies:
        received.update(_event_ids(bytes(body), bool(gzipped)))
    refused = Counter(str(event_id) for (event_id,) in refusals)
    return StoreSnapshot(
        quantities=quantities, rows=len(fetched), received=received, refused=refused
    )


def _event_ids(body: bytes, gzipped: bool) -> list[str]:
    document = json.loads(gzip.decompress(body) if gzipped else body)
    return [
        str(event["event_id"])
        for event in document.get("events", [])
        if isinstance(event, dict) and "event_id" in event
    ]

"""The events a collector received, in SQLite, deduplicated on ``event_id``.

Built for ingest speed: one transaction per batch; each event row holds only the columns
queries filter or show, and the batch's raw body is stored once, so attribution, metadata
and measurements are read back from it (nothing is re-encoded per event). The summary per
(metric, license) is brought up to date when it is read, from the rows inserted since.

Every event the collector refused (a 207 rejection, or the one event of a batch a fault
plan answered 413) is recorded in ``refusals``, in the batch's transaction, with whether
that answer was the one sent: a fault plan can replace a 207 after storing. So what the
server refused can be told from what never reached it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import sqlite3
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doow_serverless._core.wire import read_event

# event_id, batch_seq, position in the batch, license_id, metric, quantity, unit, kind,
# occurred_at, source_system
Row = tuple[str, int, int, str, str, float, str | None, str, str, str]
# An event refused for good: the id it claims (None when it has none), and why.
Refusal = tuple[str | None, str]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY,
    batch_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    gzipped INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    batch_seq INTEGER NOT NULL,
    position INTEGER NOT NULL,
    license_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    quantity NUMERIC NOT NULL,
    unit TEXT,
    kind TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    source_system TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS refusals (
    seq INTEGER PRIMARY KEY,
    batch_seq INTEGER NOT NULL,
    batch_id TEXT NOT NULL,
    event_id TEXT,
    reason TEXT NOT NULL,
    received_at TEXT NOT NULL,
    answered INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS summary (
    metric TEXT NOT NULL,
    license_id TEXT NOT NULL,
    events INTEGER NOT NULL,
    total_quantity REAL NOT NULL,
    last_received_at TEXT NOT NULL,
    PRIMARY KEY (metric, license_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS summarized (up_to INTEGER NOT NULL);
INSERT INTO summarized SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM summarized);
"""

_INSERT = "INSERT OR IGNORE INTO events VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_REFUSAL = "INSERT INTO refusals VALUES (NULL, ?, ?, ?, ?, ?, ?)"
_SUMMARIZE = """
INSERT INTO summary
SELECT metric, license_id, COUNT(*), TOTAL(quantity), MAX(batches.received_at)
FROM events JOIN batches ON batches.seq = events.batch_seq
WHERE events.seq > (SELECT up_to FROM summarized)
GROUP BY metric, license_id
ON CONFLICT (metric, license_id) DO UPDATE SET
    events = events + excluded.events,
    total_quantity = total_quantity + excluded.total_quantity,
    last_received_at = MAX(last_received_at, excluded.last_received_at)
"""
_SELECT_EVENTS = """
SELECT event_id, batch_id, license_id, metric, quantity, unit, kind, occurred_at,
       source_system, received_at, batch_seq, position
FROM events JOIN batches ON batches.seq = events.batch_seq
"""
MAX_SUMMARY_ROWS = 500
_CHECKPOINT_EVERY_S = 1.0
_EXACT_FLOAT_INT = 2**53


@dataclass(frozen=True)
class InsertResult:
    inserted: int
    # (index in the rows given, reason) of rows SQLite could not take
    failed: list[tuple[int, str]]


class EventStore:
    def __init__(self, path: str | Path | None) -> None:
        self._lock = threading.Lock()
        self._path = None if path is None else str(path)
        self._db = sqlite3.connect(
            self._path or ":memory:", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        (last,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM batches").fetchone()
        self._batch_seqs = itertools.count(int(last) + 1)
        self._checkpointer: _Checkpointer | None = None
        if self._path is not None:
            # Checkpoints (and their fsync) run off the ingest path, on their own connection.
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = _Checkpointer(self._path)

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._db.close()

    def next_batch_seq(self) -> int:
        return next(self._batch_seqs)  # atomic under the GIL

    def insert(
        self,
        *,
        batch_seq: int,
        batch_id: str,
        received_at: str,
        raw: bytes,
        gzipped: bool,
        rows: Sequence[Row],
        refused: Sequence[Refusal] = (),
        answered: bool = True,
    ) -> InsertResult:
        """Store the batch's events in one transaction; already stored event ids are ignored.

        ``refused`` (and the rows SQLite cannot take) are recorded as refusals, ``answered``
        saying whether the 207 naming them is the answer the client is sent.
        """
        if not rows and not refused:
            return InsertResult(0, [])
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                inserted, failed = self._insert_rows(rows)
                if inserted:
                    self._db.execute(
                        "INSERT INTO batches VALUES (?, ?, ?, ?, ?)",
                        (batch_seq, batch_id, received_at, int(gzipped), raw),
                    )
                refusals = [*refused, *((rows[index][0], why) for index, why in failed)]
                self._db.executemany(
                    _INSERT_REFUSAL,
                    [
                        (batch_seq, batch_id, event_id, why, received_at, int(answered))
                        for event_id, why in refusals
                    ],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return InsertResult(inserted, failed)

    def _insert_rows(self, rows: Sequence[Row]) -> tuple[int, list[tuple[int, str]]]:
        """Insert ``rows`` inside the caller's transaction: how many were new, which failed."""
        if not rows:
            return 0, []
        self._db.execute("SAVEPOINT event_rows")
        try:
            inserted: int = self._db.executemany(_INSERT, rows).rowcount
        except (UnicodeEncodeError, OverflowError):
            self._db.execute("ROLLBACK TO event_rows")
            return self._insert_one_by_one(rows)
        finally:
            self._db.execute("RELEASE event_rows")
        return inserted, []

    def _insert_one_by_one(self, rows: Sequence[Row]) -> tuple[int, list[tuple[int, str]]]:
        """The slow path for a batch holding a value SQLite cannot bind (rare, hostile input)."""
        inserted = 0
        failed: list[tuple[int, str]] = []
        for index, row in enumerate(rows):
            try:
                inserted += self._db.execute(_INSERT, row).rowcount
            except UnicodeEncodeError:
                failed.append((index, "text is not valid Unicode (lone surrogate)"))
            except OverflowError:
                failed.append((index, "quantity is out of range"))
        return inserted, failed

    def events(
        self, metric: str | None = None, license_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Stored events, newest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if metric is not None:
            clauses.append("metric = ?")
            params.append(metric)
        if license_id is not None:
            clauses.append("license_id = ?")
            params.append(license_id)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"{_SELECT_EVENTS} {where} ORDER BY events.seq DESC LIMIT ?"
        with self._lock:
            fetched = self._db.execute(query, [*params, limit]).fetchall()
            wanted = sorted({row[10] for row in fetched})
            bodies = {
                seq: (raw, bool(gzipped))
                for seq, raw, gzipped in self._db.execute(
                    "SELECT seq, body, gzipped FROM batches WHERE seq IN "  # noqa: S608
                    f"({','.join('?' * len(wanted))})",
                    wanted,
                )
            }
        return _event_dicts(fetched, bodies)

    def refusals(self, limit: int = 100) -> list[dict[str, Any]]:
        """Events refused for good, newest first: which, why, and whether the 207 was sent."""
        with self._lock:
            fetched = self._db.execute(
                "SELECT event_id, batch_id, reason, received_at, answered FROM refusals "
                "ORDER BY seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            {
                "event_id": event_id,
                "batch_id": batch_id,
                "reason": reason,
                "received_at": received_at,
                "answered": bool(answered),
            }
            for event_id, batch_id, reason, received_at, answered in fetched
        ]

    def summary(self) -> list[dict[str, Any]]:
        """Per (metric, license_id): events stored, total quantity, last received."""
        with self._lock:
            self._summarize()
            fetched = self._db.execute(
                "SELECT metric, license_id, events, total_quantity, last_received_at "
                "FROM summary ORDER BY last_received_at DESC, metric, license_id LIMIT ?",
                (MAX_SUMMARY_ROWS,),
            ).fetchall()
        return [
            {
                "metric": metric,
                "license_id": license_id,
                "events": events,
                "total_quantity": _number(total),
                "last_received_at": last,
            }
            for metric, license_id, events, total, last in fetched
        ]

    def count(self) -> int:
        with self._lock:
            self._summarize()
            (total,) = self._db.execute("SELECT COALESCE(SUM(events), 0) FROM summary").fetchone()
        return int(total)

    def clear(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            for table in ("events", "batches", "refusals", "summary"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608
            self._db.execute("UPDATE summarized SET up_to = 0")
            self._db.execute("COMMIT")

    def _summarize(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(_SUMMARIZE)
            self._db.execute(
                "UPDATE summarized SET up_to = (SELECT COALESCE(MAX(seq), 0) FROM events)"
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


class _Checkpointer:
    def __init__(self, path: str) -> None:
        self._stopping = threading.Event()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._thread = threading.Thread(target=self._run, name="doow-collector-wal", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(_CHECKPOINT_EVERY_S):
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5.0)
        self._db.close()


def _number(value: float) -> float | int | None:
    if not math.isfinite(value):
        return None  # a float sum can overflow to infinity, which JSON cannot carry
    if value.is_integer() and abs(value) < _EXACT_FLOAT_INT:
        return int(value)
    return value


def _event_dicts(
    fetched: list[tuple[Any, ...]], bodies: dict[int, tuple[bytes, bool]]
) -> list[dict[str, Any]]:
    documents: dict[int, list[Any]] = {}
    events = []
    for row in fetched:
        batch_seq, position = row[10], row[11]
        if batch_seq not in documents:
            raw, gzipped = bodies[batch_seq]
            documents[batch_seq] = _stored_events(raw, gzipped)
        details = read_event(documents[batch_seq][position])
        events.append(
            {
                "event_id": row[0],
                "batch_id": row[1],
                "license_id": row[2],
                "metric": row[3],
                "quantity": row[4],
                "unit": row[5],
                "kind": row[6],
                "occurred_at": row[7],
                "source_system": row[8],
                "received_at": row[9],
                "attribution": None if isinstance(details, str) else details.attribution,
                "metadata": None if isinstance(details, str) else details.metadata,
                "measurements": [] if isinstance(details, str) else details.measurements,
            }
        )
    return events


def _stored_events(raw: bytes, gzipped: bool) -> list[Any]:
    """The events array of a stored (already accepted, so well-formed) batch body."""
    text = zlib.decompress(raw, wbits=31) if gzipped else raw
    # NaN and Infinity (accepted in metadata) become strings, so the answer stays valid JSON.
    document = json.loads(text, parse_constant=str)
    events: list[Any] = document["events"]
    return events

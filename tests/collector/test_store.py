"""The SQLite store on its own: what a batch leaves in it, refusals included."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from doow_serverless_dev.collector._store import EventStore, Row


@pytest.fixture
def store() -> Iterator[EventStore]:
    opened = EventStore(None)
    yield opened
    opened.close()


def row(batch_seq: int, position: int, license_id: str = "lic_1") -> Row:
    return (str(uuid.uuid4()), batch_seq, position, license_id, "m", 1.0, None, "USAGE", "t", "s")


def insert(store: EventStore, rows: list[Row], refused: list[tuple[str | None, str]]) -> int:
    seq = store.next_batch_seq()
    result = store.insert(
        batch_seq=seq,
        batch_id=str(uuid.uuid4()),
        received_at="2026-11-22T10:15:30.123Z",
        raw=json.dumps({"events": [{} for _ in rows]}).encode(),
        gzipped=False,
        rows=rows,
        refused=refused,
    )
    return result.inserted


def test_a_row_sqlite_cannot_take_is_refused_and_recorded_the_rest_stored(
    store: EventStore,
) -> None:
    rows = [row(1, 0), row(1, 1, license_id="lic_\ud800"), row(1, 2)]
    assert insert(store, rows, [("claimed-id", "quantity must be greater than 0")]) == 2
    assert {item["event_id"] for item in store.events()} == {rows[0][0], rows[2][0]}
    assert [(item["event_id"], item["reason"]) for item in store.refusals()] == [
        (rows[1][0], "text is not valid Unicode (lone surrogate)"),
        ("claimed-id", "quantity must be greater than 0"),
    ]


def test_refusals_alone_are_recorded_and_cleared_with_the_events(store: EventStore) -> None:
    assert insert(store, [], [(None, "event must be an object, got string")]) == 0
    assert [item["answered"] for item in store.refusals()] == [True]
    store.clear()
    assert store.refusals() == []

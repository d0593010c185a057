"""The spool's files, one process at a time, and packing read-back events into batches."""

from __future__ import annotations

import itertools
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doow_serverless._core.constants import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from doow_serverless._core.wire import encode_batch
from doow_serverless._delivery.outbox import pack_documents
from doow_serverless._durability.spool import Spool, SpoolUnavailable, parse_batch_body

BIG = 2**40


def document(pad: int = 0) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "license_id": "lic_1",
        "occurred_at": "2026-11-23T00:00:00Z",
        "source_system": "sdk",
        "kind": "USAGE",
        "measurements": [{"metric_name": "api_calls", "quantity": 1}],
    }
    if pad:
        event["metadata"] = {"pad": "p" * pad}
    return event


def body(count: int = 2) -> tuple[str, bytes, list[str]]:
    """A batch id, its request body, and its event ids."""
    documents = [document() for _ in range(count)]
    batch_id = str(uuid.uuid4())
    return batch_id, encode_batch(batch_id, documents), [d["event_id"] for d in documents]


def dead_owner(base: Path, name: str = "7-dead", *, lock: bool = True) -> Path:
    directory = base / name
    directory.mkdir(parents=True)
    if lock:
        (directory / "lock").touch()
    return directory


@pytest.fixture
def spools() -> Any:
    opened: list[Spool] = []

    def make(base: Path, max_bytes: int = BIG) -> Spool:
        spool = Spool(base, max_bytes)
        opened.append(spool)
        return spool

    yield make
    for spool in opened:
        spool.close()


# -- writing ---------------------------------------------------------------------------------


def test_a_saved_batch_is_one_file_holding_the_exact_body(tmp_path: Path, spools: Any) -> None:
    spool = spools(tmp_path)
    assert spool.open() == []
    batch_id, raw, _ = body()
    assert spool.save(batch_id, raw)
    (owner,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    assert sorted(path.name for path in owner.iterdir()) == [f"{batch_id}.json", "lock"]
    assert (owner / f"{batch_id}.json").read_bytes() == raw
    assert spool.holds(batch_id)
    assert spool.bytes_used == len(raw)


def test_a_discarded_batch_leaves_no_file(tmp_path: Path, spools: Any) -> None:
    spool = spools(tmp_path)
    spool.open()
    batch_id, raw, _ = body()
    spool.save(batch_id, raw)
    spool.discard(batch_id)
    assert not any(path.suffix == ".json" for path in tmp_path.rglob("*"))
    assert (spool.bytes_used, spool.holds(batch_id)) == (0, False)


def test_nothing_is_saved_before_the_spool_is_open(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", BIG)
    batch_id, raw, _ = body()
    assert spool.save(batch_id, raw) is False
    assert not (tmp_path / "spool").exists()


def test_the_size_bound_refuses_a_batch_and_a_discard_makes_room(
    tmp_path: Path, spools: Any
) -> None:
    first_id, first, _ = body()
    spool = spools(tmp_path, max_bytes=len(first) + 10)
    spool.open()
    assert spool.save(first_id, first)
    second_id, second, _ = body()
    assert spool.save(second_id, second) is False
    assert [path.name for path in tmp_path.glob("*/*.json")] == [f"{first_id}.json"]
    spool.discard(first_id)
    assert spool.save(second_id, second)


def test_close_removes_an_empty_directory_and_keeps_one_with_batches(
    tmp_path: Path, spools: Any
) -> None:
    empty = spools(tmp_path / "a")
    empty.open()
    empty.close()
    assert list((tmp_path / "a").iterdir()) == []

    kept = spools(tmp_path / "b")
    kept.open()
    batch_id, raw, _ = body()
    kept.save(batch_id, raw)
    kept.close()
    names = sorted(path.name for path in (tmp_path / "b").glob("*/*"))
    assert names == [f"{batch_id}.json", "lock"]  # the lock, now free, tells it is orphaned


def test_a_path_under_a_file_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpoolUnavailable, match="cannot use spool directory"):
        Spool(blocker / "spool", BIG).open()


# -- adopting -------------------------------------------------------------------------------


def test_a_closed_owners_batches_are_adopted_by_the_next(tmp_path: Path, spools: Any) -> None:
    first = spools(tmp_path)
    first.open()
    batch_id, raw, ids = body(3)
    first.save(batch_id, raw)
    first.close()

    second = spools(tmp_path)
    (adopted,) = second.open()
    assert (adopted.batch_id, adopted.event_ids, adopted.body) == (batch_id, ids, raw)
    assert second.holds(batch_id)
    assert second.bytes_used == len(raw)
    owners = [path for path in tmp_path.iterdir() if path.is_dir()]
    assert len(owners) == 1  # the dead owner's directory is gone; ours holds the batch
    assert (owners[0] / f"{batch_id}.json").read_bytes() == raw


def test_a_live_owners_directory_is_left_alone(tmp_path: Path, spools: Any) -> None:
    live = spools(tmp_path)
    live.open()
    batch_id, raw, _ = body()
    live.save(batch_id, raw)
    other = spools(tmp_path)  # its own open file: the flock conflicts as across processes
    assert other.open() == []
    assert live.holds(batch_id)
    assert len(list(tmp_path.glob("*/*.json"))) == 1


def test_an_owner_that_died_before_locking_is_adopted(tmp_path: Path, spools: Any) -> None:
    owner = dead_owner(tmp_path, lock=False)
    batch_id, raw, _ = body()
    (owner / f"{batch_id}.json").write_bytes(raw)
    (adopted,) = spools(tmp_path).open()
    assert adopted.batch_id == batch_id
    assert not owner.exists()


def test_a_directory_being_claimed_is_not_adopted(tmp_path: Path, spools: Any) -> None:
    building = dead_owner(tmp_path, ".new-99-cafe")
    batch_id, raw, _ = body()
    (building / f"{batch_id}.json").write_bytes(raw)
    assert spools(tmp_path).open() == []
    assert (building / f"{batch_id}.json").exists()


def test_a_half_written_temporary_file_is_not_adopted(tmp_path: Path, spools: Any) -> None:
    owner = dead_owner(tmp_path)
    (owner / f".{uuid.uuid4()}.tmp").write_bytes(b'{"batch_id": "')
    batch_id, raw, _ = body()
    (owner / f"{batch_id}.json").write_bytes(raw)
    assert [batch.batch_id for batch in spools(tmp_path).open()] == [batch_id]
    assert not owner.exists()
    assert list(tmp_path.rglob("*.tmp")) == []


def test_corrupt_files_are_set_aside_and_the_rest_adopted(
    tmp_path: Path, spools: Any, caplog: pytest.LogCaptureFixture
) -> None:
    owner = dead_owner(tmp_path)
    batch_id, raw, _ = body()
    (owner / f"{batch_id}.json").write_bytes(raw)
    (owner / "garbage.json").write_bytes(b"\x00\xff not json \x80")
    (owner / "truncated.json").write_bytes(raw[: len(raw) // 2])
    (owner / "empty.json").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="doow_serverless"):
        adopted = spools(tmp_path).open()
    assert [batch.batch_id for batch in adopted] == [batch_id]
    assert sorted(path.name for path in tmp_path.glob("*.bad")) == [
        "empty.bad",
        "garbage.bad",
        "truncated.bad",
    ]
    assert (tmp_path / "truncated.bad").read_bytes() == raw[: len(raw) // 2]
    assert caplog.text.count("set aside") == 3


@pytest.mark.parametrize(
    "document",
    [
        [],
        "text",
        {"events": [{"event_id": str(uuid.uuid4())}]},
        {"batch_id": "not-a-uuid", "events": [{"event_id": str(uuid.uuid4())}]},
        {"batch_id": str(uuid.uuid4()), "events": []},
        {"batch_id": str(uuid.uuid4()), "events": {"event_id": str(uuid.uuid4())}},
        {"batch_id": str(uuid.uuid4()), "events": [{"event_id": "nope"}]},
        {"batch_id": str(uuid.uuid4()), "events": [{"event_id": str(uuid.uuid4())}, 7]},
    ],
    ids=[
        "array",
        "string",
        "no-batch-id",
        "bad-batch-id",
        "no-events",
        "events-object",
        "bad-event-id",
        "event-not-object",
    ],
)
def test_a_body_that_is_not_a_batch_is_refused(document: object, tmp_path: Path) -> None:
    assert parse_batch_body(json.dumps(document).encode(), tmp_path / "x.json") is None


def test_a_batch_body_is_read_back_with_its_ids(tmp_path: Path) -> None:
    batch_id, raw, ids = body(4)
    batch = parse_batch_body(raw, tmp_path / "x.json")
    assert batch is not None
    assert (batch.batch_id, batch.event_ids, batch.body) == (batch_id, ids, raw)
    assert [d["event_id"] for d in batch.documents] == ids


# -- packing read-back events (pack_documents) ------------------------------------------------


def ids_of(documents: list[dict[str, Any]]) -> list[str]:
    return [d["event_id"] for d in documents]


def test_packing_keeps_every_event_id_in_order() -> None:
    documents = [document() for _ in range(1_201)]
    batches = pack_documents(documents)
    assert [len(batch) for batch in batches] == [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS, 201]
    assert [i for batch in batches for i in batch.event_ids] == ids_of(documents)
    assert [d for batch in batches for d in batch.documents] == documents
    assert len({batch.batch_id for batch in batches}) == len(batches)


def test_packing_keeps_each_body_within_the_byte_limit() -> None:
    documents = [document(pad=15_000) for _ in range(100)]
    batches = pack_documents(documents)
    assert len(batches) > 1
    for batch in batches:
        raw, gzipped = batch.body(False)
        assert not gzipped
        assert len(raw) <= MAX_BATCH_BYTES
        sent = json.loads(raw)
        assert sent["batch_id"] == batch.batch_id
        assert ids_of(sent["events"]) == batch.event_ids
    assert [i for batch in batches for i in batch.event_ids] == ids_of(documents)


def test_packing_fills_batches_up_to_the_limits() -> None:
    documents = [document(pad=15_000) for _ in range(100)]
    batches = pack_documents(documents)
    for batch, following in itertools.pairwise(batches):
        grown = encode_batch(batch.batch_id, [*batch.documents, following.documents[0]])
        assert len(grown) > MAX_BATCH_BYTES  # the next event would not have fitted


def test_a_document_larger_than_the_limit_travels_alone() -> None:
    documents = [document(), document(pad=3_000), document()]
    batches = pack_documents(documents, max_bytes=2_000)
    assert [batch.event_ids for batch in batches] == [[i] for i in ids_of(documents)]


def test_packing_nothing_makes_no_batch() -> None:
    assert pack_documents([]) == []


@settings(max_examples=60, deadline=None)
@given(
    pads=st.lists(st.integers(min_value=0, max_value=3_000), max_size=60),
    max_events=st.integers(min_value=1, max_value=20),
    max_bytes=st.integers(min_value=400, max_value=12_000),
)
def test_packing_respects_any_limits(pads: list[int], max_events: int, max_bytes: int) -> None:
    documents = [document(pad=pad) for pad in pads]
    batches = pack_documents(documents, max_events=max_events, max_bytes=max_bytes)
    assert [i for batch in batches for i in batch.event_ids] == ids_of(documents)
    for batch in batches:
        assert 1 <= len(batch) <= max_events
        if len(batch) > 1:
            assert len(batch.body(False)[0]) <= max_bytes


def test_an_adopted_file_not_named_for_its_batch_goes_when_discarded(
    tmp_path: Path, spools: Any
) -> None:
    owner = dead_owner(tmp_path)
    _, raw, _ = body()
    (owner / "copy of a batch.json").write_bytes(raw)
    spool = spools(tmp_path)
    (adopted,) = spool.open()
    assert adopted.name == "copy of a batch"  # the spool knows files by name, not batch id
    spool.discard(adopted.name)
    assert list(tmp_path.rglob("*.json")) == []

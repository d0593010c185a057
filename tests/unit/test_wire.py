"""The wire format: what the client encodes is what the collector reads, byte-exact sizes."""

from __future__ import annotations

import gzip
import json
import math
import uuid
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doow_serverless._core.events import QueuedEvent, format_timestamp, parse_timestamp
from doow_serverless._core.wire import (
    WireError,
    WireEvent,
    decode_body,
    encode_batch,
    event_document,
    event_id_from_seed,
    new_random_ids,
    read_batch,
    read_event,
    read_rejections,
    sanitize_server_text,
    settled_id,
)
from doow_serverless._delivery.outbox import Outbox, Unencodable

names = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40).filter(
    lambda text: not text.isspace()
)
attribution_values = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
queued_events = st.builds(
    QueuedEvent,
    metric=names,
    quantity=st.one_of(
        st.integers(min_value=1, max_value=2**53),
        st.floats(min_value=1e-9, max_value=1e15, allow_nan=False, allow_infinity=False),
    ),
    license_id=names,
    unit=st.one_of(st.none(), names),
    kind=st.just("USAGE"),
    occurred_at=st.floats(min_value=0, max_value=4_000_000_000),
    attribution=st.one_of(st.none(), st.dictionaries(names, attribution_values, max_size=5)),
    metadata=st.one_of(st.none(), st.dictionaries(names, st.integers(), max_size=3)),
    event_id=st.none(),
    id_seed=st.one_of(st.none(), names),
    source_system=st.one_of(st.none(), names),
)


@settings(max_examples=200, deadline=None)
@given(
    event=queued_events, defaults=st.one_of(st.none(), st.dictionaries(names, names, max_size=3))
)
def test_every_valid_event_is_read_back_by_the_collector_unchanged(
    event: QueuedEvent, defaults: dict[str, Any] | None
) -> None:
    event_id = settled_id(event, iter(new_random_ids(1)))
    body = encode_batch(str(uuid.uuid4()), [event_document(event, event_id, defaults)])
    [document] = read_batch(json.loads(body)).events
    read = read_event(document)
    assert isinstance(read, WireEvent), read
    assert read.event_id == event_id
    assert (read.metric, read.license_id, read.unit) == (event.metric, event.license_id, event.unit)
    assert read.quantity == event.quantity
    expected_attribution = {**(defaults or {}), **(event.attribution or {})} or None
    assert read.attribution == expected_attribution
    assert read.metadata == event.metadata
    assert read.source_system == (event.source_system or "sdk")
    assert abs(parse_timestamp(read.occurred_at) - event.occurred_at) <= 0.0005 + 1e-6


@settings(max_examples=50, deadline=None)
@given(count=st.integers(min_value=0, max_value=600))
def test_random_ids_are_distinct_version_4_uuids(count: int) -> None:
    ids = new_random_ids(count)
    assert len(set(ids)) == count
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)


def test_ids_derived_from_the_same_seed_are_the_same_uuid_everywhere() -> None:
    first = event_id_from_seed("req-1:0")
    assert first == event_id_from_seed("req-1:0")
    assert first != event_id_from_seed("req-1:1")
    assert uuid.UUID(first).version == 5


def test_timestamps_are_rfc3339_utc_with_milliseconds() -> None:
    assert format_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert format_timestamp(1_763_806_530.1234) == "2025-11-22T10:15:30.123Z"
    assert format_timestamp(1.9996) == "1970-01-01T00:00:02.000Z"


def event(n: int, padding: int = 0) -> QueuedEvent:
    return QueuedEvent(
        "m",
        1,
        "lic",
        None,
        "USAGE",
        0.0,
        None,
        {"pad": "x" * padding} if padding else None,
        None,
        f"seed:{n}",
        None,
    )


def test_batches_respect_the_event_and_byte_limits_and_keep_order() -> None:
    outbox = Outbox(10_000, max_batch_events=500, max_batch_bytes=460_800)
    for n in range(1_200):
        outbox.put(event(n))
    sizes = []
    seen = []
    while (batch := outbox.claim(None, [])) is not None:
        sizes.append(len(batch))
        body, _ = batch.body(compression=False)
        assert len(body) <= 460_800
        seen.extend(batch.event_ids)
        outbox.settle(batch)
    assert sizes == [500, 500, 200]
    assert seen == [event_id_from_seed(f"seed:{n}") for n in range(1_200)]
    assert len(outbox) == 0


def test_a_batch_is_cut_by_bytes_before_the_event_count() -> None:
    outbox = Outbox(10_000)
    for n in range(60):
        outbox.put(event(n, padding=15_000))  # ~15 KB each: 30 fit in 450 KiB
    first = outbox.claim(None, [])
    assert first is not None
    body, gzipped = first.body(compression=True)
    assert gzipped
    assert len(gzip.decompress(body)) <= 460_800 < len(gzip.decompress(body)) + 15_200
    assert 25 <= len(first) < 60


def test_an_event_too_large_alone_is_refused_and_the_rest_go_on() -> None:
    outbox = Outbox(100, max_batch_bytes=2_000)
    outbox.put(event(1))
    outbox.put(event(2, padding=5_000))
    outbox.put(event(3))
    refused: list[Unencodable] = []
    first = outbox.claim(None, refused)
    assert first is not None
    # The events around it go on, in order, in the same batch.
    assert first.event_ids == [event_id_from_seed("seed:1"), event_id_from_seed("seed:3")]
    assert [item.event_id for item in refused] == [event_id_from_seed("seed:2")]
    assert "larger than a request" in refused[0].reason
    outbox.settle(first)
    assert outbox.claim(None, refused) is None
    assert len(outbox) == 0


def test_events_put_back_after_a_cut_keep_their_ids() -> None:
    outbox = Outbox(100, max_batch_bytes=3_000)
    for n in range(10):
        outbox.put(event(n, padding=500)._replace(id_seed=None))  # random ids
    batches = []
    while (batch := outbox.claim(None, [])) is not None:
        batches.append(batch)
        outbox.settle(batch)
    ids = [event_id for batch in batches for event_id in batch.event_ids]
    assert len(batches) > 2
    assert len(ids) == len(set(ids)) == 10


def test_a_released_batch_is_resent_byte_for_byte() -> None:
    outbox = Outbox(100)
    outbox.put(event(1))
    batch = outbox.claim(None, [])
    assert batch is not None
    first_body = batch.body(compression=False)
    outbox.release(batch)
    again = outbox.claim(None, [])
    assert again is batch
    assert again.body(compression=False) == first_body


def test_halves_keep_event_ids_and_get_new_batch_ids() -> None:
    outbox = Outbox(100)
    for n in range(5):
        outbox.put(event(n))
    batch = outbox.claim(None, [])
    assert batch is not None
    left, right = batch.halves()
    assert left.event_ids + right.event_ids == batch.event_ids
    assert len({batch.batch_id, left.batch_id, right.batch_id}) == 3


IDS = [str(uuid.UUID(int=n)) for n in (1, 2, 3)]


@pytest.mark.parametrize(
    "body",
    [
        {"accepted": [IDS[0]], "rejected": [{"event_id": IDS[1], "reason": "unknown license"}]},
        {
            "accepted": 1,
            "rejected": 1,
            "batch_id": "x",
            "rejections": [{"event_id": IDS[1], "reason": "unknown license"}],
        },
    ],
)
def test_207_bodies_are_read_in_either_form(body: dict[str, Any]) -> None:
    rejections = read_rejections(json.dumps(body).encode(), IDS)
    assert rejections is not None
    assert [(item.event_id, item.reason) for item in rejections] == [(IDS[1], "unknown license")]


def test_207_rejections_count_only_events_of_the_batch_once_each() -> None:
    foreign = str(uuid.UUID(int=99))
    body = {
        "rejections": [
            {"event_id": IDS[1], "reason": "a"},
            {"event_id": IDS[1], "reason": "again"},
            {"event_id": foreign, "reason": "not ours"},
            {"event_id": "\x1b[31mforged\nline", "reason": "x"},
        ]
    }
    rejections = read_rejections(json.dumps(body).encode(), IDS)
    assert [item.event_id for item in rejections or []] == [IDS[1]]


@pytest.mark.parametrize("body", [b"", b"not json", b"[1]", b'{"message": "partial"}'])
def test_an_unreadable_207_is_none_so_the_batch_is_sent_again(body: bytes) -> None:
    assert read_rejections(body, IDS) is None


def test_server_text_is_stripped_of_control_characters_and_cut() -> None:
    assert sanitize_server_text("bad\x1b[31m\nthing") == "bad [31m thing"
    assert len(sanitize_server_text("x" * 5000)) == 512


def test_decode_body_caps_gzip_and_names_json_problems() -> None:
    bomb = gzip.compress(b"0" * 5_000_000)
    with pytest.raises(WireError) as caught:
        decode_body(bomb, "gzip")
    assert caught.value.status == 413
    with pytest.raises(WireError, match="malformed JSON: Expecting"):
        decode_body(b'{"events": [', None)
    with pytest.raises(WireError, match="truncated"):
        decode_body(gzip.compress(b'{"a": 1}')[:-8], "gzip")
    assert decode_body(gzip.compress(b'{"a": 1}'), "GZIP") == {"a": 1}


def test_decode_body_inflates_nothing_past_its_limit() -> None:
    limit = 100_000
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    valid = compressor.compress(bytes(limit + 50_000)) + compressor.flush(zlib.Z_FULL_FLUSH)
    corrupt = b"\xff" * 64  # an invalid deflate block, 50 kB past the limit
    inflated: list[int] = []
    with pytest.raises(WireError) as caught:
        decode_body(valid + corrupt, "gzip", limit, on_inflated=inflated.append)
    assert caught.value.status == 413  # inflating it all would have met the corruption: 400
    assert inflated == [limit + 1]
    with pytest.raises(zlib.error, match="invalid block type"):
        zlib.decompress(valid + corrupt, wbits=31)


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ([], "must be a JSON object"),
        ({"events": "x"}, "'events' must be an array"),
        ({"events": []}, "'events' is empty"),
        ({"events": [{}] * 501}, "501 events"),
        ({"events": [{}], "batch_id": "nope"}, "'batch_id' must be a UUID"),
    ],
)
def test_read_batch_refuses_whole_requests_with_reasons(document: Any, fragment: str) -> None:
    with pytest.raises(WireError, match=fragment):
        read_batch(document)


def test_read_event_accepts_node_sdk_copies_and_rejects_bad_quantities() -> None:
    base = {
        "event_id": str(uuid.uuid4()),
        "license_id": "lic",
        "occurred_at": "2026-11-22T10:15:30.123Z",
        "metric": "tokens",
        "quantity": 3,
    }
    assert isinstance(read_event(base), WireEvent)
    bad = {**base, "measurements": [{"metric_name": "tokens", "quantity": -1}]}
    assert read_event(bad) == "quantity must be greater than 0 for a USAGE event, got -1"
    assert read_event({**base, "quantity": math.inf}) == "quantity must be finite, got inf"

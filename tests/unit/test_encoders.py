"""Whichever encoder writes a batch (the standard library's, or orjson from the `fast`
extra), the collector reads back exactly what was tracked: every field, numbers with their
type and value, any Unicode, attribution types, metadata of any JSON shape.

Batches are formed by the real outbox and decoded by the collector's own functions
(``decode_body``, ``read_batch``, ``read_event``); the log lines the outbox writes from the
same texts are read back too.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doow_serverless._core import wire
from doow_serverless._core.constants import FAST_JSON_MIN_EVENTS
from doow_serverless._core.events import QueuedEvent, parse_timestamp
from doow_serverless._core.wire import (
    WireEvent,
    decode_body,
    event_id_from_seed,
    read_batch,
    read_event,
)
from doow_serverless._delivery.outbox import Batch, Outbox
from doow_serverless._durability.lines import read_log, unsent_lines

ENCODERS = ("standard", "orjson")


@pytest.fixture(params=ENCODERS)
def encoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The outbox encodes with this one, whatever the batch size."""
    if request.param == "standard":
        monkeypatch.setattr(wire, "_fast_encoder", None)
        monkeypatch.setattr(wire, "_fast_unavailable", True)
    else:
        monkeypatch.setattr(wire, "_fast_encoder", wire._orjson_encoder(orjson))
    return str(request.param)


# No lone surrogates: validation refuses them (they cannot be UTF-8).
text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30)
names = text.filter(lambda value: bool(value) and not value.isspace())
big_ints = st.integers(min_value=-(2**80), max_value=2**80)  # beyond 64 bits: the fallback
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
attribution_values = st.one_of(text, big_ints, finite_floats, st.booleans())
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), big_ints, finite_floats, text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)
usage_quantities = st.one_of(
    st.integers(min_value=1, max_value=2**63 - 1),
    st.floats(min_value=5e-324, max_value=1.7976931348623157e308),
)


@st.composite
def queued_events(draw: st.DrawFn) -> QueuedEvent:
    kind = draw(st.sampled_from(["USAGE", "ADJUSTMENT"]))
    if kind == "USAGE":
        quantity = draw(usage_quantities)
    else:
        quantity = draw(usage_quantities) * draw(st.sampled_from([1, -1]))
    return QueuedEvent(
        metric=draw(names),
        quantity=quantity,
        license_id=draw(names),
        unit=draw(st.one_of(st.none(), text)),
        kind=kind,
        occurred_at=draw(st.floats(min_value=0, max_value=4_102_444_800)),
        attribution=draw(
            st.one_of(st.none(), st.dictionaries(names, attribution_values, max_size=6))
        ),
        metadata=draw(st.one_of(st.none(), st.dictionaries(text, json_values, max_size=5))),
        event_id=None,
        id_seed=draw(st.one_of(st.none(), text.map(lambda seed: f"inv:{seed}"))),
        source_system=draw(st.one_of(st.none(), names)),
    )


def same(read: Any, sent: Any) -> bool:
    """Equal in value and in JSON type, all the way down: True is not 1, 1 is not 1.0."""
    if isinstance(sent, dict):
        return (
            isinstance(read, dict)
            and read.keys() == sent.keys()
            and all(same(read[key], sent[key]) for key in sent)
        )
    if isinstance(sent, (list, tuple)):
        return (
            isinstance(read, list)
            and len(read) == len(sent)
            and all(same(a, b) for a, b in zip(read, sent, strict=True))
        )
    if isinstance(sent, float):
        # -0.0 == 0.0 in JSON's meaning too; every other float comes back exactly.
        return type(read) is float and (read == sent or (math.isnan(read) and math.isnan(sent)))
    return type(read) is type(sent) and read == sent


def one_batch(events: list[QueuedEvent], defaults: dict[str, Any] | None) -> Batch:
    outbox = Outbox(len(events) + 1)
    for event in events:
        assert outbox.put(event) > 0
    refused: list[Any] = []
    batch = outbox.claim(defaults, refused)
    assert batch is not None
    assert refused == []
    assert len(batch) == len(events)  # small events: one batch
    return batch


def check_read_back(
    documents: list[Any], events: list[QueuedEvent], defaults: dict[str, Any] | None
) -> None:
    assert len(documents) == len(events)
    for document, event in zip(documents, events, strict=True):
        read = read_event(document)
        assert isinstance(read, WireEvent), read
        if event.id_seed is not None:
            assert read.event_id == event_id_from_seed(event.id_seed)
        assert same(read.license_id, event.license_id)
        assert same(read.metric, event.metric)
        assert same(read.quantity, event.quantity)
        assert same(read.unit, event.unit)
        assert read.kind == event.kind
        assert read.source_system == (event.source_system or "sdk")
        assert abs(parse_timestamp(read.occurred_at) - event.occurred_at) <= 0.0005 + 1e-6
        assert read.occurred_at.endswith("Z")
        assert len(read.measurements) == 1
        expected = {**(defaults or {}), **(event.attribution or {})} or None
        assert same(read.attribution, expected), (read.attribution, expected)
        assert same(read.metadata, event.metadata), (read.metadata, event.metadata)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    events=st.lists(queued_events(), min_size=1, max_size=8),
    defaults=st.one_of(st.none(), st.dictionaries(names, attribution_values, max_size=3)),
)
def test_a_batch_means_what_was_tracked_with_either_encoder(
    encoder: str, events: list[QueuedEvent], defaults: dict[str, Any] | None
) -> None:
    batch = one_batch(events, defaults)
    for compression in (False, True):
        body, gzipped = batch.body(compression)
        document = decode_body(body, "gzip" if gzipped else None)
        wire_batch = read_batch(document)
        assert wire_batch.batch_id == batch.batch_id
        assert [item["event_id"] for item in wire_batch.events] == batch.event_ids
        check_read_back(wire_batch.events, events, defaults)
    # The log lines the outbox writes from the same texts hold the same events.
    lines = unsent_lines(batch.batch_id, batch.documents, "test", encoded=batch.encoded)
    [record] = read_log(lines).records
    check_read_back(record.events, events, defaults)


EDGES = [
    QueuedEvent(
        "tökens 🎉", 2**63 - 1, "lic \"quoted\" \\ slash /", "µs", "USAGE", 0.0,
        {"int": -(2**63), "big": 2**70, "float": 1e16, "tiny": 5e-324, "true": True,
         "false": False, "zero": 0.0, "neg": -0.0, "text": "\u2028\u2029\x00\x1f\x7f"},
        {"nested": [{"a": [1, 2.5, None, True]}, "é", {"deep": {"big": -(2**90)}}],
         "huge": 1.7976931348623157e308, "": ""},
        None, "inv:req-1:0", "sdk-ö",
    ),
    QueuedEvent(
        "m", 1e-300, "l", None, "ADJUSTMENT", 4_102_444_799.9996, None, None, None, None, None
    ),
    QueuedEvent("m", -3, "l", "", "ADJUSTMENT", 1.0005, {"k": "v"}, {}, None, None, None),
]  # fmt: skip


def test_edge_values_mean_the_same_with_either_encoder(encoder: str) -> None:
    batch = one_batch(EDGES, {"team": "platform", "int": 7})
    document = decode_body(*_body(batch))
    check_read_back(read_batch(document).events, EDGES, {"team": "platform", "int": 7})


def test_both_encoders_write_the_same_meaning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "_fast_encoder", None)
    monkeypatch.setattr(wire, "_fast_unavailable", True)
    standard = read_batch(decode_body(*_body(one_batch(EDGES, None)))).events
    monkeypatch.setattr(wire, "_fast_encoder", wire._orjson_encoder(orjson))
    fast = read_batch(decode_body(*_body(one_batch(EDGES, None)))).events
    for left, right in zip(standard, fast, strict=True):
        left.pop("event_id"), right.pop("event_id")  # random, unless derived
        assert same(left, right)


def test_orjson_is_loaded_for_a_large_batch_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A function's few events never pay for importing it; a large batch does."""
    monkeypatch.setattr(wire, "_fast_encoder", None)
    monkeypatch.setattr(wire, "_fast_unavailable", False)
    monkeypatch.delitem(__import__("sys").modules, "orjson")
    assert wire.document_encoder(FAST_JSON_MIN_EVENTS - 1) is wire.encode_standard
    fast = wire.document_encoder(FAST_JSON_MIN_EVENTS)
    assert fast is not wire.encode_standard
    assert wire.document_encoder(1) is fast  # once loaded, used for every batch
    assert fast({"a": 2**70, "b": [1.5]}) == '{"a":1180591620717411303424,"b":[1.5]}'


def _body(batch: Batch) -> tuple[bytes, str | None]:
    body, gzipped = batch.body(True)
    return body, "gzip" if gzipped else None

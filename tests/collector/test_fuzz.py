"""Property tests: whatever arrives, the collector answers 2xx or 4xx in JSON and stays up."""

from __future__ import annotations

import gzip
import json
import re
import socket
import string
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doow_serverless_dev.collector import Collector

from .helpers import AUTH, INGEST, CollectorFactory, batch, client, event, post

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=12)
)
json_doc = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
timestamps = st.sampled_from(
    ["2026-11-22T10:15:30.123Z", "2026-11-22T10:15:30+02:00", "2026-11-22", "yesterday", ""]
)
measurement = st.fixed_dictionaries(
    {},
    optional={
        "metric_name": st.text(max_size=6) | json_doc,
        "quantity": st.integers(-3, 2**70) | st.floats() | json_doc,
    },
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "event_id": st.uuids().map(str) | st.text(max_size=40) | json_doc,
        "license_id": st.sampled_from(["lic_a", "lic_b", "", " "]) | st.text(max_size=6) | json_doc,
        "occurred_at": timestamps | json_doc,
        "kind": st.sampled_from(["USAGE", "ADJUSTMENT", "usage"]) | json_doc,
        "unit": st.text(max_size=6) | json_doc,
        "source_system": st.text(max_size=6) | json_doc,
        "attribution": st.dictionaries(st.text(max_size=6), json_leaf, max_size=3) | json_doc,
        "metadata": json_doc,
        "measurements": st.lists(measurement | json_doc, max_size=3) | json_doc,
        "metric": st.text(max_size=6) | json_doc,
        "quantity": st.integers(-3, 10) | json_doc,
    },
)
batch_like = (
    st.fixed_dictionaries(
        {},
        optional={
            "batch_id": st.uuids().map(str) | json_doc,
            "sdk_version": json_doc,
            "events": st.lists(event_like | json_doc, max_size=6) | json_doc,
        },
    )
    | json_doc
)
# h11 (under httpx) refuses to send header values with surrounding whitespace
header_alphabet = string.ascii_letters + string.digits + " ,;=-_/."
header_text = st.text(alphabet=header_alphabet, max_size=24).map(str.strip)
encodings = st.sampled_from(["gzip", "identity", "GZIP", "x-gzip", "br", "deflate", "gzip, br"])
authorizations = st.sampled_from(
    [AUTH["Authorization"], "Bearer dk_other_key", "Bearer sk_1", "Basic x", "Bearer  dk_x"]
)


def _check(answer: httpx.Response) -> None:
    assert 200 <= answer.status_code < 500, answer.text
    document = json.loads(answer.content)
    assert isinstance(document, dict)
    if answer.status_code in (202, 207):
        assert isinstance(document["accepted"], int)
        assert isinstance(document["rejected"], int)
        assert isinstance(document["batch_id"], str)
        assert len(document.get("rejections", [])) == document["rejected"]
    else:
        assert isinstance(document["message"], str)
        assert isinstance(document["errorClass"], str)


def _still_healthy(collector: Collector) -> None:
    with client(collector) as session:
        assert session.get("/healthz").status_code == 200
        assert post(session, batch([event()])).status_code == 202


def test_arbitrary_documents_never_get_a_5xx(collector: Collector) -> None:
    with httpx.Client(base_url=collector.url, timeout=10.0) as session:

        @FUZZ
        @given(document=batch_like, compress=st.booleans(), authorization=authorizations)
        def run(document: Any, compress: bool, authorization: str) -> None:
            body = json.dumps(document).encode()
            headers = {"Authorization": authorization}
            if compress:
                body = gzip.compress(body)
                headers["Content-Encoding"] = "gzip"
            _check(session.post(INGEST, content=body, headers=headers))

        run()
    _still_healthy(collector)
    assert collector.stats()["requests_by_status"].keys() <= {"202", "207", "400", "401", "413"}


def test_arbitrary_bytes_and_encodings_never_get_a_5xx(collector: Collector) -> None:
    with httpx.Client(base_url=collector.url, headers=AUTH, timeout=10.0) as session:

        @FUZZ
        @given(
            raw=st.binary(max_size=600),
            wrap=st.sampled_from(["plain", "gzip", "truncated-gzip"]),
            encoding=encodings | header_text | st.none(),
        )
        def run(raw: bytes, wrap: str, encoding: str | None) -> None:
            if wrap != "plain":
                raw = gzip.compress(raw)
                if wrap == "truncated-gzip":
                    raw = raw[: len(raw) // 2]
            headers = {} if encoding is None else {"Content-Encoding": encoding}
            _check(session.post(INGEST, content=raw, headers=headers))

        run()
    _still_healthy(collector)


def test_valid_batches_with_hostile_values_never_get_a_5xx(collector: Collector) -> None:
    with client(collector) as session:

        @FUZZ
        @given(
            license_id=st.text(min_size=1, max_size=20),
            metric=st.text(min_size=1, max_size=20),
            quantity=st.integers(min_value=1, max_value=2**90) | st.floats(min_value=1e-300),
            metadata=json_doc,
        )
        def run(license_id: str, metric: str, quantity: float, metadata: Any) -> None:
            item = event(
                license_id=license_id,
                metadata=metadata if isinstance(metadata, dict) else {"value": metadata},
                measurements=[{"metric_name": metric, "quantity": quantity}],
            )
            answer = post(session, batch([item]))
            _check(answer)
            listing = session.get("/events", params={"metric": metric, "limit": 1})
            assert listing.status_code == 200
            json.loads(listing.content)  # strictly valid JSON, whatever was stored

        run()
    stats = collector.stats()
    # NaN/Infinity (which json.dumps writes) is not JSON: such a request is refused whole.
    refused_whole = stats["requests_by_status"].get("400", 0)
    assert stats["events_stored"] + stats["rejected"] + refused_whole == stats["requests"]
    _still_healthy(collector)


def test_arbitrary_request_heads_never_get_a_5xx(collector_factory: CollectorFactory) -> None:
    running = collector_factory(idle_timeout=0.2)
    statuses = re.compile(rb"HTTP/1\.[01] (\d{3}) ")

    @settings(FUZZ, max_examples=60)
    @given(
        head=st.binary(max_size=200)
        | st.sampled_from([b"GET / HTTP/1.1", b"POST /telemetry/events HTTP/1.1"]).flatmap(
            lambda line: st.binary(max_size=120).map(lambda tail: line + b"\r\n" + tail)
        )
    )
    def run(head: bytes) -> None:
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
            sock.sendall(head + b"\r\n\r\n")
            received = b""
            while chunk := sock.recv(65_536):
                received += chunk
        answer = statuses.match(received)
        # A first line with a word in it is a request, and is answered first thing; blank
        # ones (whitespace as str.split() sees it, as http.server does) ask for nothing.
        if head.split(b"\n", 1)[0].decode("latin-1").split():
            assert answer is not None, (head, received[:300])
        for status in statuses.findall(received):
            assert int(status) < 500, received[:300]

    run()
    _still_healthy(running)


def test_fuzzed_ids_are_echoed_safely(collector: Collector) -> None:
    odd = {"event_id": "\u0000" + "x" * 1000 + str(uuid.uuid4())}
    answer = post(collector, batch([odd]))
    assert answer.status_code == 207
    assert len(answer.json()["rejections"][0]["event_id"]) == 128

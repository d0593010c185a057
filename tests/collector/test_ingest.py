"""POST /telemetry/events: acceptance, deduplication, partial rejection, refusals."""

from __future__ import annotations

import gzip
import json
import logging
import sys
import uuid
import zlib
from pathlib import Path

import httpx
import pytest

from doow_serverless._core.constants import MAX_BATCH_BYTES
from doow_serverless_dev.collector import Collector

from .helpers import (
    AUTH,
    INGEST,
    KEY,
    CollectorFactory,
    batch,
    body_of,
    client,
    event,
    json_of,
    metric_event,
    post,
    raw_exchange,
    status_of,
)


def assert_error(response: httpx.Response, status: int, error_class: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "errorClass"}
    assert body["errorClass"] == error_class
    message: str = body["message"]
    return message


def test_a_valid_batch_is_accepted_and_stored(collector: Collector) -> None:
    sent = [event(), event(unit=None), metric_event("requests", 2.5)]
    document = batch(sent)
    response = post(collector, document)
    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "rejected": 0, "batch_id": document["batch_id"]}
    stored = {item["event_id"]: item for item in collector.events()}
    assert set(stored) == {item["event_id"] for item in sent}
    first = stored[sent[0]["event_id"]]
    assert first["batch_id"] == document["batch_id"]
    assert first["metric"] == "tokens"
    assert first["quantity"] == 10
    assert first["attribution"] == {"model": "gpt-4o", "team": "platform"}
    assert first["metadata"] == {"request_id": "req_1"}
    assert first["measurements"] == [{"metric_name": "tokens", "quantity": 10}]
    assert stored[sent[2]["event_id"]]["quantity"] == 2.5


def test_a_gzipped_batch_is_accepted(collector: Collector) -> None:
    sent = [event() for _ in range(50)]
    response = post(collector, batch(sent), compress=True)
    assert response.status_code == 202
    assert response.json()["accepted"] == 50
    assert collector.stats()["events_stored"] == 50
    assert collector.events(limit=1)[0]["metadata"] == {"request_id": "req_1"}


def test_a_resent_event_is_acknowledged_but_stored_once(collector: Collector) -> None:
    first = event()
    document = batch([first, event()])
    with client(collector) as session:
        assert post(session, document).json()["accepted"] == 2
        again = post(session, document)
        mixed = post(session, batch([first, event()]))
    assert again.status_code == 202
    assert again.json()["accepted"] == 2
    assert mixed.json()["accepted"] == 2
    stats = collector.stats()
    assert stats["events_stored"] == 3
    assert stats["duplicates"] == 3
    assert stats["accepted"] == 6
    assert [item["event_id"] for item in collector.events()].count(first["event_id"]) == 1


def test_event_ids_are_deduplicated_in_canonical_form(collector: Collector) -> None:
    event_id = str(uuid.uuid4())
    post(collector, batch([event(event_id=event_id)]))
    response = post(collector, batch([event(event_id=event_id.upper())]))
    assert response.status_code == 202
    assert collector.stats()["events_stored"] == 1
    assert collector.stats()["duplicates"] == 1


def test_the_same_event_twice_in_one_batch_is_stored_once(collector: Collector) -> None:
    twin = event()
    response = post(collector, batch([twin, dict(twin)]))
    assert response.json()["accepted"] == 2
    assert collector.stats()["events_stored"] == 1


def test_node_sdk_events_without_measurements_are_accepted(collector: Collector) -> None:
    node = event(metric="requests", quantity=3, timestamp="2026-11-22T10:15:30.123Z")
    del node["measurements"], node["occurred_at"]
    assert post(collector, batch([node])).status_code == 202
    (stored,) = collector.events()
    assert (stored["metric"], stored["quantity"]) == ("requests", 3)
    assert stored["measurements"] == [{"metric_name": "requests", "quantity": 3}]


def test_invalid_events_are_rejected_with_207_and_valid_ones_stored(
    collector: Collector,
) -> None:
    good = event()
    bad_quantity = metric_event("tokens", 0)
    no_license = event()
    del no_license["license_id"]
    document = batch([good, bad_quantity, no_license, "not an event"])
    response = post(collector, document)
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["rejected"], body["batch_id"]) == (1, 3, document["batch_id"])
    reasons = {item["event_id"]: item["reason"] for item in body["rejections"]}
    assert "quantity must be greater than 0" in reasons[bad_quantity["event_id"]]
    assert reasons[no_license["event_id"]].startswith("license_id must be a non-empty string")
    assert reasons[None] == "event must be an object, got string"
    assert [item["event_id"] for item in collector.events()] == [good["event_id"]]
    assert collector.stats()["rejected"] == 3


def test_rejected_licenses_are_refused_as_unknown(collector_factory: CollectorFactory) -> None:
    running = collector_factory(reject_licenses=["lic_gone"])
    kept = event()
    refused = event(license_id="lic_gone")
    response = post(running, batch([kept, refused]))
    assert response.status_code == 207
    assert response.json()["rejections"] == [
        {"event_id": refused["event_id"], "reason": "unknown license"}
    ]
    assert [item["license_id"] for item in running.events()] == ["lic_test"]


def test_a_batch_with_every_event_rejected_is_still_207(
    collector_factory: CollectorFactory,
) -> None:
    running = collector_factory(reject_licenses=["lic_gone"])
    response = post(running, batch([event(license_id="lic_gone"), metric_event("x", -1)]))
    assert response.status_code == 207
    assert (response.json()["accepted"], response.json()["rejected"]) == (0, 2)
    assert running.stats()["events_stored"] == 0


def test_every_refusal_answered_is_recorded_in_the_store_even_with_nothing_stored(
    collector_factory: CollectorFactory, tmp_path: Path
) -> None:
    db_path = tmp_path / "collector.sqlite3"
    running = collector_factory(db_path=db_path, reject_licenses=["lic_gone"])
    gone, invalid = event(license_id="lic_gone"), metric_event("x", -1)
    document = batch([gone, invalid, "not an event"])
    assert post(running, document).status_code == 207
    running.stop()

    restarted = collector_factory(db_path=db_path)
    assert restarted.stats()["events_stored"] == 0
    refusals = restarted.refusals()
    assert [(item["event_id"], item["answered"]) for item in refusals] == [
        (None, True),
        (invalid["event_id"], True),
        (gone["event_id"], True),
    ]
    assert refusals[-1]["reason"] == "unknown license"
    assert {item["batch_id"] for item in refusals} == {document["batch_id"]}


def test_a_missing_batch_id_gets_one(collector: Collector) -> None:
    response = post(collector, {"events": [event()]})
    assert response.status_code == 202
    batch_id = response.json()["batch_id"]
    assert str(uuid.UUID(batch_id)) == batch_id
    assert collector.events()[0]["batch_id"] == batch_id


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "missing Authorization header"),
        ({"Authorization": f"Basic {KEY}"}, "Authorization must use the Bearer scheme"),
        ({"Authorization": "Bearer sk_live_123"}, "API key must start with dk_"),
        ({"Authorization": "Bearer dk_"}, "API key has an implausible length"),
        ({"Authorization": "Bearer dk_" + "x" * 300}, "API key has an implausible length"),
    ],
)
def test_bad_credentials_are_401(
    collector: Collector, headers: dict[str, str], expected: str
) -> None:
    with httpx.Client(base_url=collector.url, headers=headers) as session:
        response = session.post(INGEST, content=body_of(batch([event()])))
    assert assert_error(response, 401, "Unauthorized") == expected
    assert collector.stats()["events_stored"] == 0
    assert collector.stats()["requests_by_status"] == {"401": 1}


def test_configured_keys_accept_only_themselves(collector_factory: CollectorFactory) -> None:
    running = collector_factory(api_keys=["dk_first", "dk_second"])
    document = body_of(batch([event()]))
    with httpx.Client(base_url=running.url) as session:
        wrong = session.post(INGEST, content=document, headers={"Authorization": f"Bearer {KEY}"})
        right = session.post(
            INGEST, content=document, headers={"Authorization": "Bearer dk_second"}
        )
        near = session.post(INGEST, content=document, headers={"Authorization": "Bearer dk_secon"})
    assert assert_error(wrong, 401, "Unauthorized") == "unknown API key"
    assert right.status_code == 202
    assert near.status_code == 401


def test_api_keys_must_be_dk_keys() -> None:
    with pytest.raises(ValueError, match="dk_"):
        Collector(api_keys=["sk_nope"]).start()
    with pytest.raises(ValueError, match="dev mode"):
        Collector(api_keys=[]).start()


# Python versions that limit int() digits (3.11, and 3.10 from 3.10.7) refuse this literal.
GIANT_INTEGER = (
    [(b'{"events": [' + b"9" * 5000 + b"]}", "malformed JSON: Exceeds the limit")]
    if hasattr(sys, "get_int_max_str_digits")
    else []
)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"events": [', "malformed JSON: Expecting value at line 1 column 13"),
        (b"", "malformed JSON: Expecting value at line 1 column 1"),
        (b"[1, 2]", "body must be a JSON object, got array"),
        (b'{"events": {}}', "'events' must be an array, got object"),
        (b'{"events": []}', "'events' is empty"),
        (b'{"batch_id": "nope", "events": [1]}', "'batch_id' must be a UUID string"),
        (b'{"events": "\xff\xfe"}', "body is not valid UTF-8 (byte 12)"),
        (b"[" * 100_000, "malformed JSON: nested too deeply"),
        *GIANT_INTEGER,
    ],
)
def test_malformed_bodies_are_400_naming_the_problem(
    collector: Collector, content: bytes, expected: str
) -> None:
    response = post(collector, content=content)
    assert assert_error(response, 400, "BadRequest").startswith(expected)


def test_truncated_gzip_is_400(collector: Collector) -> None:
    whole = body_of(batch([event() for _ in range(20)]), compress=True)
    response = post(
        collector, content=whole[: len(whole) // 2], headers={"Content-Encoding": "gzip"}
    )
    assert assert_error(response, 400, "BadRequest") == "gzip body is truncated"


def test_gzip_that_is_not_gzip_is_400(collector: Collector) -> None:
    response = post(collector, content=b"plain text", headers={"Content-Encoding": "gzip"})
    assert assert_error(response, 400, "BadRequest").startswith("body is not valid gzip")


def test_an_unknown_content_encoding_is_415(collector: Collector) -> None:
    response = post(collector, content=b"{}", headers={"Content-Encoding": "br"})
    assert (
        assert_error(response, 415, "UnsupportedMediaType") == "unsupported Content-Encoding 'br'"
    )


def test_more_than_500_events_is_413(collector: Collector) -> None:
    response = post(collector, batch([event() for _ in range(501)]), compress=True)
    message = assert_error(response, 413, "PayloadTooLarge")
    assert message == "501 events in one batch; the limit is 500"
    assert collector.stats()["events_stored"] == 0


def test_a_body_decompressing_beyond_the_cap_is_413(collector: Collector) -> None:
    document = batch([event(metadata={"pad": "x" * MAX_BATCH_BYTES})])
    response = post(collector, document, compress=True)
    assert assert_error(response, 413, "PayloadTooLarge") == (
        f"decompressed body exceeds {MAX_BATCH_BYTES} bytes"
    )


def test_an_uncompressed_body_beyond_the_json_cap_is_413(collector: Collector) -> None:
    document = batch([event(metadata={"pad": "x" * MAX_BATCH_BYTES})])
    response = post(collector, document)
    assert assert_error(response, 413, "PayloadTooLarge") == f"body exceeds {MAX_BATCH_BYTES} bytes"


def test_a_raw_body_beyond_the_request_cap_is_413_and_closes(collector: Collector) -> None:
    with client(collector) as session:
        response = post(session, content=b"x" * 2_000_000)
        assert assert_error(response, 413, "PayloadTooLarge") == (
            "body of 2000000 bytes exceeds the limit of 1048576 bytes"
        )
        assert response.headers["Connection"] == "close"
        assert post(session, batch([event()])).status_code == 202
    assert collector.stats()["connections"] == 2


def test_a_gzip_bomb_is_refused_having_inflated_no_more_than_the_limit(
    collector: Collector,
) -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1_048_576)
    bomb = b"".join(compressor.compress(zeros) for _ in range(100)) + compressor.flush()
    assert len(bomb) < 200_000  # 100 MiB of zeros
    small = body_of(batch([event()]))
    # The counter measures: a small gzipped batch adds exactly its inflated size.
    gzipped = post(collector, content=gzip.compress(small), headers={"Content-Encoding": "gzip"})
    assert gzipped.status_code == 202
    assert collector.stats()["inflated_bytes"] == len(small)

    response = post(collector, content=bomb, headers={"Content-Encoding": "gzip"})
    assert assert_error(response, 413, "PayloadTooLarge").startswith("decompressed body exceeds")
    inflated = collector.stats()["inflated_bytes"] - len(small)
    # Up to the limit and one byte past it (how it knows the limit is exceeded), no more.
    assert MAX_BATCH_BYTES < inflated <= MAX_BATCH_BYTES + 1
    assert post(collector, batch([event()])).status_code == 202


def test_a_post_without_content_length_is_411(collector: Collector) -> None:
    request = (
        b"POST /telemetry/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dk_test_1\r\n"
        b"Connection: close\r\n\r\n"
    )
    response = raw_exchange(collector, request)
    assert status_of(response) == 411
    assert json_of(response) == {
        "message": "Content-Length is required",
        "errorClass": "LengthRequired",
    }


def test_a_chunked_post_is_411(collector: Collector) -> None:
    def chunks() -> list[bytes]:
        return [body_of(batch([event()]))]

    with client(collector) as session:
        response = session.post(INGEST, content=iter(chunks()))
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert assert_error(response, 411, "LengthRequired").startswith(
        "chunked bodies are not supported"
    )


def test_a_bad_content_length_is_400(collector: Collector) -> None:
    request = (
        b"POST /telemetry/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1_0\r\n"
        b"Connection: close\r\n\r\n0123456789"
    )
    response = raw_exchange(collector, request)
    assert status_of(response) == 400
    assert json_of(response)["message"] == "Content-Length is not a valid length"


def test_values_sqlite_cannot_hold_are_rejected_not_500(collector: Collector) -> None:
    good = event()
    surrogate = event(license_id="lic_\ud800")
    huge = metric_event("tokens", 2**70)
    content = json.dumps(batch([good, surrogate, huge])).encode()  # ensure_ascii keeps \ud800
    response = post(collector, content=content)
    assert response.status_code == 207
    reasons = {item["event_id"]: item["reason"] for item in response.json()["rejections"]}
    assert reasons == {
        surrogate["event_id"]: (
            "license_id must be valid Unicode text (it holds a lone surrogate)"
        ),
        huge["event_id"]: (
            "quantity must be within ±9223372036854775807 (a 64-bit integer), got "
            "1180591620717411303424"
        ),
    }
    assert [item["event_id"] for item in collector.events()] == [good["event_id"]]


def test_nan_is_not_json_and_refuses_the_request(collector: Collector) -> None:
    content = body_of(batch([event()])).replace(b'"req_1"', b"NaN")
    response = post(collector, content=content)
    assert response.status_code == 400
    assert "NaN is not valid JSON" in response.json()["message"]
    assert collector.events() == []


def test_the_ingest_path_answers_only_post(collector: Collector) -> None:
    with client(collector) as session:
        response = session.get(INGEST)
    assert assert_error(response, 405, "MethodNotAllowed") == "use POST"
    assert response.headers["Allow"] == "POST"


def test_unknown_paths_are_404_json(collector: Collector) -> None:
    with httpx.Client(base_url=collector.url, headers=AUTH) as session:
        response = session.post("/v1/events", content=b"{}")
        again = session.get("/healthz")
    assert assert_error(response, 404, "NotFound") == "no such path: /v1/events"
    assert again.status_code == 200


def test_gzip_module_output_is_accepted_too(collector: Collector) -> None:
    # gzip.compress with a real mtime and a file name, as other clients send it
    content = gzip.compress(body_of(batch([event()])), mtime=1_700_000_000)
    assert post(collector, content=content, headers={"Content-Encoding": "GZIP"}).status_code == 202


def test_an_internal_error_is_a_logged_generic_500(
    collector_factory: CollectorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    running = collector_factory()
    assert running._state is not None
    running._state.store.close()  # a genuine fault: the store is gone under a running server
    with caplog.at_level(logging.ERROR, logger="doow_serverless_dev.collector"):
        response = post(running, batch([event()]))
    message = assert_error(response, 500, "InternalServerError")
    assert message == "internal error; see the collector's log"
    assert "internal error answering POST /telemetry/events" in caplog.text
    assert "ProgrammingError" in caplog.text
    assert KEY not in caplog.text

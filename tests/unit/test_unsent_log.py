"""The log-line fallback: unsent events as stdout lines, read back by replay."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest

from doow_serverless._core.constants import MAX_BATCH_BYTES, MAX_METADATA_BYTES
from doow_serverless._core.wire import encode_batch, read_event
from doow_serverless._durability.lines import (
    FORMAT_VERSION,
    MARKER,
    MAX_LINE_BYTES,
    read_unsent,
    unsent_lines,
    write_unsent,
)

BATCH_ID = "0b7d3c52-9a41-4e0f-8f6b-2d5e4c3a1b09"
# CloudWatch cuts a log event at 256 KiB, 26 bytes of which are its own; a Lambda line
# starts with a timestamp, the request id and the level.
CLOUDWATCH_LINE_BYTES = 256 * 1024 - 26 - 100


def document(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "license_id": "lic_1",
        "occurred_at": "2026-11-23T00:00:00.000Z",
        "source_system": "sdk",
        "kind": "USAGE",
        "measurements": [{"metric_name": "api_calls", "quantity": n + 1}],
        **extra,
    }


def cloudwatch(line: str) -> str:
    return f"2026-11-23T00:00:00.000Z\t3f2a1b0c-5d6e-4f70-8a9b-0c1d2e3f4a5b\tINFO\t{line}"


def test_a_large_batch_is_split_into_lines_under_the_limit_with_events_in_order() -> None:
    documents = [document(n, metadata={"pad": "x" * 900}) for n in range(500)]
    lines = unsent_lines(BATCH_ID, documents, "HTTP 503")
    assert len(lines) > 1
    assert all(len(line.encode("utf-8")) <= MAX_LINE_BYTES for line in lines)
    records = [json.loads(line)[MARKER] for line in lines]
    assert {(record["v"], record["batch_id"]) for record in records} == {(FORMAT_VERSION, BATCH_ID)}
    assert [event for record in records for event in record["events"]] == documents


def test_a_small_batch_is_one_line_with_the_reason() -> None:
    documents = [document(n) for n in range(3)]
    (line,) = unsent_lines(BATCH_ID, documents, "the flush budget ran out")
    record = json.loads(line)[MARKER]
    assert record == {
        "v": FORMAT_VERSION,
        "batch_id": BATCH_ID,
        "reason": "the flush budget ran out",
        "events": documents,
    }


def test_a_long_reason_is_cut() -> None:
    (line,) = unsent_lines(BATCH_ID, [document()], "r" * 5_000)
    assert len(json.loads(line)[MARKER]["reason"]) == 300


def test_lines_round_trip_through_read_unsent() -> None:
    documents = [document(n, metadata={"pad": "y" * 700}) for n in range(300)]
    lines = unsent_lines(BATCH_ID, documents, "x")
    assert list(read_unsent(lines)) == documents


def test_unrelated_lines_are_ignored() -> None:
    documents = [document(n) for n in range(2)]
    lines = [
        "START RequestId: 3f2a1b0c Version: $LATEST",
        '{"level": "INFO", "message": "hello"}',
        "a log line that mentions doow_unsent in passing",
        '{"doow_unsent": "not a record"}',
        '{"doow_unsent": {"v": 1, "events": "not a list"}}',
        '{"doow_unsent": {"v": 1, "events": [1, "two", null]}}',
        *unsent_lines(BATCH_ID, documents, "x"),
        "END RequestId: 3f2a1b0c",
        "",
    ]
    unreadable: list[int] = []
    # Items of a record's events come out as they are (the caller checks each); lines that
    # hold a record that cannot be read are counted; a mere mention is not a record.
    assert list(read_unsent(lines, unreadable)) == [1, "two", None, *documents]
    assert unreadable == [4, 5]


def test_a_line_with_a_prefix_is_read() -> None:
    documents = [document(n) for n in range(4)]
    lines = [cloudwatch(line) for line in unsent_lines(BATCH_ID, documents, "x")]
    assert list(read_unsent(lines)) == documents


@pytest.mark.parametrize(
    "wrap",
    [
        lambda line: json.dumps({"message": line}),
        lambda line: json.dumps({"timestamp": 1, "message": line, "logStream": "s"}),
        lambda line: json.dumps({"message": json.dumps({"level": "INFO", "message": line})}),
        lambda line: json.dumps({"records": [{"properties": {"message": line}}]}),
        lambda line: json.dumps({"message": json.loads(line)}),
        lambda line: cloudwatch(json.dumps({"message": line})),
    ],
    ids=["message", "export-record", "wrapped-twice", "nested-list", "as-object", "prefix"],
)
def test_a_json_wrapped_line_is_read(wrap: Any) -> None:
    documents = [document(n) for n in range(3)]
    lines = [wrap(line) for line in unsent_lines(BATCH_ID, documents, "x")]
    assert list(read_unsent(lines)) == documents


def test_a_truncated_line_is_ignored_without_raising() -> None:
    kept = [document(n) for n in range(2)]
    cut = unsent_lines(BATCH_ID, [document(n) for n in range(5)], "x")[0]
    lines = [
        cut[: len(cut) // 2],
        cloudwatch(cut[:-1]),
        json.dumps({"message": cut[:-3]}),
        json.dumps({"message": cut})[:-2],
        *unsent_lines(BATCH_ID, kept, "x"),
        cut[:12],
    ]
    assert list(read_unsent(lines)) == kept


def test_non_ascii_metadata_round_trips() -> None:
    metadata = {"name": "café ☕ 😀", "中文": "値", "escape": 'quote" back\\ nl\n'}
    documents = [document(n, metadata=metadata) for n in range(2)]
    lines = unsent_lines(BATCH_ID, documents, "raison: échec")
    read = list(read_unsent([cloudwatch(line) for line in lines]))
    assert read == documents
    first = read[0]
    assert isinstance(first, dict)
    assert first["metadata"]["name"] == "café ☕ 😀"


def test_write_unsent_writes_whole_lines() -> None:
    stream = io.StringIO()
    documents = [document(n) for n in range(3)]
    assert write_unsent(BATCH_ID, documents, "x", stream)
    text = stream.getvalue()
    assert text.endswith("\n")
    assert list(read_unsent(text.splitlines())) == documents


def test_write_unsent_to_a_closed_stream_says_so() -> None:
    stream = io.StringIO()
    stream.close()
    assert write_unsent(BATCH_ID, [document()], "x", stream) is False


def test_one_valid_event_makes_a_line_cloudwatch_keeps_whole() -> None:
    attribution = {f"k{n:02d}": "😀" * 1024 for n in range(50)}  # the most validation allows
    metadata = {"m": "€" * ((MAX_METADATA_BYTES - 20) // 3)}
    event = document(attribution=attribution, metadata=metadata)
    assert not isinstance(read_event(event), str)  # the server would take it
    assert len(encode_batch(BATCH_ID, [event])) <= MAX_BATCH_BYTES  # and it can be sent
    lines = unsent_lines(BATCH_ID, [event], "x")
    assert list(read_unsent(lines)) == [event]
    assert max(len(line.encode("utf-8")) for line in lines) <= CLOUDWATCH_LINE_BYTES

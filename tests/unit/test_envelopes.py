"""CloudWatch Logs subscription payloads opened: what a forwarder and ``replay`` read.

Built as CloudWatch Logs builds them (``lambda_local.subscription_event``; the same form
``sam local generate-event cloudwatch logs`` prints), and broken in the ways a payload
can be broken: each break is reported, never a crash, and never a silent skip.
"""

from __future__ import annotations

import base64
import gzip
import json
import tracemalloc
import uuid
import zlib

import pytest

from doow_serverless._durability.envelopes import (
    EnvelopeError,
    find_awslogs,
    gunzip,
    open_event,
)
from doow_serverless._durability.lines import read_log, unsent_lines
from doow_serverless_dev.lambda_local import control_event, envelope, subscription_event


def record(n: int = 1) -> tuple[list[str], list[str]]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    lines = unsent_lines(str(uuid.uuid4()), [{"event_id": i} for i in ids], "test")
    return lines, ids


def test_a_delivery_opens_to_its_messages_in_order() -> None:
    delivery = open_event(subscription_event(["a\n", "b\n"], log_group="/aws/lambda/fn"))
    assert delivery.message_type == "DATA_MESSAGE"
    assert not delivery.is_control
    assert delivery.log_group == "/aws/lambda/fn"
    assert delivery.messages == ["a\n", "b\n"]


def test_a_control_message_is_recognised() -> None:
    assert open_event(control_event()).is_control


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"records": []}, "no awslogs"),
        ({"awslogs": {"data": 12}}, "not a string"),
        ({"awslogs": {"data": "%%%"}}, "not base64"),
        ({"awslogs": {"data": base64.b64encode(b"plain").decode()}}, "not a gzip"),
        (envelope(b"[1, 2]"), "not a JSON object"),
        (envelope(b"{not json"), "not JSON"),
        (envelope(json.dumps({"messageType": "DATA_MESSAGE"}).encode()), "no messageType"),
        (
            envelope(json.dumps({"messageType": "DATA_MESSAGE", "logEvents": [{}]}).encode()),
            "no message",
        ),
    ],
)
def test_a_broken_payload_says_why(event: object, problem: str) -> None:
    with pytest.raises(EnvelopeError, match=problem):
        open_event(event)


def test_a_payload_that_inflates_past_the_limit_is_refused_not_inflated() -> None:
    bomb = gzip.compress(b"0" * 2_000_000)
    assert len(bomb) < 5_000
    with pytest.raises(EnvelopeError, match="inflates past"):
        gunzip(bomb, limit=1_000_000)
    assert len(gunzip(bomb, limit=2_000_000)) == 2_000_000


def test_a_bomb_is_refused_without_being_inflated() -> None:
    # 256 MiB of zeros in about 250 KB of gzip, made a chunk at a time.
    squeezer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1024 * 1024)
    bomb = b"".join(squeezer.compress(chunk) for _ in range(256)) + squeezer.flush()
    assert len(bomb) < 300_000
    tracemalloc.start()
    try:
        with pytest.raises(EnvelopeError, match="inflates past"):
            gunzip(bomb, limit=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8_000_000  # what the limit allows, not the 256 MiB inside


def test_a_stream_cut_short_is_refused() -> None:
    with pytest.raises(EnvelopeError, match="cut short"):
        gunzip(gzip.compress(b"x" * 1000)[:-12])


def test_envelopes_escaped_in_json_again_are_found() -> None:
    lines, ids = record()
    event = subscription_event(lines)
    once = json.dumps({"Body": json.dumps(event)})
    twice = json.dumps({"Message": once})
    slashes = json.dumps(event).replace("/", "\\/")  # encoders that escape "/"
    for text in (once, twice, slashes):
        found = list(find_awslogs(text))
        assert len(found) == 1 and not isinstance(found[0], EnvelopeError)
        assert read_log([text]).unanswered_events() == [{"event_id": i} for i in ids]


def test_a_broken_envelope_in_a_log_is_counted_unreadable_and_the_others_read() -> None:
    lines, ids = record(2)
    good = json.dumps(subscription_event(lines))
    broken = json.dumps({"awslogs": {"data": "H4sIAAAAAAAA" + "A" * 40}})
    contents = read_log([broken, good])
    assert contents.unreadable == [1]
    assert contents.unanswered_events() == [{"event_id": i} for i in ids]


def test_a_line_that_only_mentions_awslogs_is_not_a_failure() -> None:
    contents = read_log(["the awslogs subscription was created", '{"awslogs": "off"}'])
    assert contents.unreadable == [] and contents.records == []

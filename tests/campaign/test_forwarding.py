"""The campaign's forwarder path (``forwarding.py``) as Lambda plays it around the forwarder:
a failed invocation is invoked again with the same event, at most twice more; a payload
whose every attempt failed lands in the dead-letter queue file, and ``replay --log`` of
that file delivers it. Real parts: the forwarder under the runtime client, the collector
over 127.0.0.1, the replay command; the log lines are the SDK's own (``unsent_lines``).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from scripts.campaign.endpoint import Endpoint
from scripts.campaign.forwarding import (
    ASYNC_RETRIES,
    ForwarderPath,
    Payload,
    log_stream,
    payloads,
)

from doow_serverless._durability.lines import ack_lines, unsent_lines

from ..polling import wait_for

KEY = "dk_forwarding_" + uuid.uuid4().hex
ATTEMPTS = 1 + ASYNC_RETRIES


def logged(count: int, seed: int) -> tuple[list[Payload], set[str]]:
    """The subscription payloads of a function's log holding ``count`` events only there
    (no acknowledgement), among lines of other kinds; and their ids."""
    ids = {str(uuid.uuid4()) for _ in range(count)}
    documents = [
        {
            "event_id": event_id,
            "license_id": "lic_forwarding",
            "occurred_at": "2026-12-04T00:00:00.000Z",
            "source_system": "sdk",
            "kind": "USAGE",
            "measurements": [{"metric_name": "units", "quantity": 1}],
        }
        for event_id in sorted(ids)
    ]
    lines = ["START RequestId: 1 Version: $LATEST"]
    lines += unsent_lines(str(uuid.uuid4()), documents, "write-ahead")
    lines += ack_lines([str(uuid.uuid4())])  # another batch's acknowledgement
    lines.append("END RequestId: 1")
    return payloads([log_stream("fn", "fn", lines)], random.Random(seed)), ids


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    collector = Endpoint(tmp_path / "collector.sqlite3", KEY, idle_timeout=5.0)
    collector.start()
    yield collector
    collector.stop()


@pytest.fixture
def forwarder(endpoint: Endpoint, tmp_path: Path) -> Iterator[ForwarderPath]:
    path = ForwarderPath(endpoint, KEY, tmp_path / "forwarder", timeout=2.0)
    yield path
    path.close()


def stored_ids(endpoint: Endpoint) -> set[str]:
    return {event["event_id"] for event in endpoint.running.events(limit=1000)}


@pytest.mark.timeout(120)
def test_a_failing_invocation_is_retried_then_kept_in_the_dead_letter_queue_replay_reads(
    endpoint: Endpoint, forwarder: ForwarderPath
) -> None:
    made, ids = logged(5, seed=1)
    path = forwarder

    endpoint.plan({"then": {"status": 503}})  # Doow down for every attempt
    failed = path.deliver(made)
    endpoint.plan(None)
    queue = json.loads(path.dead_letter_path.read_text(encoding="utf-8"))
    replayed, stored_by_replay = path.replay_dead_letters()
    again = path.deliver(made)

    assert failed.payloads == len(made) >= 1
    assert failed.invocations == ATTEMPTS * len(made)
    assert failed.retries == ASYNC_RETRIES * len(made)
    assert failed.dead_lettered == len(made)
    assert failed.stored == 0
    assert failed.failures and all("ForwardingIncomplete" in why for why in failed.failures)
    # The queue as `aws sqs receive-message --output json` prints it: each body the event.
    bodies = [json.loads(message["Body"]) for message in queue["Messages"]]
    assert bodies == [payload.event for payload in made]
    assert all(message["MessageAttributes"]["ErrorMessage"] for message in queue["Messages"])
    # Only the queue is replayed, and it holds everything the log held.
    assert replayed is not None and replayed.returncode == 0, replayed
    assert stored_by_replay == 5
    assert stored_ids(endpoint) == ids
    assert json.loads(path.dead_letter_path.read_text(encoding="utf-8")) == {"Messages": []}
    # Delivered again (at least once): each id was already stored.
    assert (again.invocations, again.dead_lettered, again.stored) == (len(made), 0, 0)
    assert again.answers["delivered"] == 5
    # Its own account, read from its output pipe (which may trail the answer).
    assert wait_for(lambda: any("5 not delivered" in line for line in path.output))
    everything = "\n".join([*path.output, replayed.stdout, replayed.stderr])
    assert KEY not in everything
    assert KEY not in path.dead_letter_path.read_text(encoding="utf-8")


@pytest.mark.timeout(120)
def test_an_invocation_that_fails_once_is_delivered_by_its_retry(
    endpoint: Endpoint, forwarder: ForwarderPath
) -> None:
    made, ids = logged(3, seed=2)
    assert len(made) == 1

    # The first request hangs past the first attempt's deadline; the next is stored.
    endpoint.plan({"script": [{"action": "hang"}]})
    delivered = forwarder.deliver(made)
    endpoint.plan(None)

    assert (delivered.invocations, delivered.retries, delivered.dead_lettered) == (2, 1, 0)
    # Its log, at INFO (what the campaign searches for the key), says what each did.
    assert wait_for(
        lambda: any('"INFO"' in line and "3 delivered" in line for line in forwarder.output)
    )
    assert delivered.stored == 3
    assert stored_ids(endpoint) == ids
    assert forwarder.replay_dead_letters() == (None, 0)

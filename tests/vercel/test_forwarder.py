"""The Vercel forwarder (``doow_serverless.forwarders.vercel.app``) under Vercel's real runtime.

``examples/vercel_forwarder/api/doow-drain.py`` (one import) is served by
``vercel_runtime.vc_init`` as Vercel serves it; the test plays the Log Drain: deliveries
(JSON array or NDJSON, gzip or not) signed as Vercel signs them
(``vercel_local.drain_delivery``). The SDK's lines in them come from a real metered
function (``api/wsgi_flask.py`` under the same runtime) run with its spool off while the
collector refused: its log messages are what the drain carries.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from doow_serverless._durability.lines import read_log
from doow_serverless_dev.collector import Collector
from doow_serverless_dev.vercel_local import (
    VercelFunction,
    VercelResponse,
    drain_delivery,
    drain_entries,
    sign,
)

from .conftest import KINDS, REPO, TEST_KEY, MakeFunction

pytestmark = pytest.mark.timeout(120)

FORWARDER_DIR = REPO / "examples" / "vercel_forwarder"
ENTRYPOINT = "api/doow-drain.py"
SECRET = "drain-secret-5f1e0c2b9a"
VERIFY = "verify-token-7d3a"


@pytest.fixture
def drain(make_function: MakeFunction) -> VercelFunction:
    return make_function(
        ENTRYPOINT,
        project_dir=FORWARDER_DIR,
        environment={
            "DOOW_TRACK_VERCEL_DRAIN_SECRET": SECRET,
            "DOOW_TRACK_VERCEL_DRAIN_VERIFY": VERIFY,
        },
    )


def function_log_during_outage(
    make_function: MakeFunction, collector: Collector, requests: int = 2, n: int = 2
) -> tuple[list[str], set[str]]:
    """A metered function's log messages while Doow answered 503, and the ids of the
    events that only that log holds."""
    entrypoint, path = KINDS["wsgi"]
    function = make_function(entrypoint, environment={"DOOW_TRACK_SPOOL_DIR": "off"})
    collector.set_faults({"then": {"status": 503}})
    try:
        for _ in range(requests):
            assert function.request("GET", path.format(n=n)).ok
        function.stop()
    finally:
        collector.clear_faults()
    messages = [entry.message for entry in function.logs]
    events = read_log(messages).unanswered_events()
    ids = {event["event_id"] for event in events if isinstance(event, dict)}
    assert len(ids) == requests * n
    assert collector.stats()["events_stored"] == 0
    return messages, ids


def stored(collector: Collector) -> set[str]:
    return {event["event_id"] for event in collector.events(limit=1000)}


def post(drain: VercelFunction, body: bytes, headers: dict[str, str]) -> VercelResponse:
    return drain.request("POST", "/api/doow-drain", body=body, headers=headers)


def assert_nothing_to_forward_and_no_secret(drain: VercelFunction) -> None:
    """Its own log, drained back to it, feeds nothing; it holds neither secret nor key."""
    logs = drain.log_text()
    contents = read_log(logs.splitlines())
    assert contents.records == [] and not contents.acknowledged
    assert SECRET not in logs and TEST_KEY not in logs


def test_the_ownership_check_and_a_get_answer_with_the_verify_token(
    drain: VercelFunction, vercel_collector: Collector
) -> None:
    got = drain.request("GET", "/api/doow-drain")

    assert got.status == 200
    assert got.headers["x-vercel-verify"] == VERIFY
    assert vercel_collector.stats()["requests"] == 0


@pytest.mark.parametrize("signature", [None, "0" * 40, "not hex", sign("another", b"x")])
def test_unsigned_or_wrongly_signed_deliveries_are_refused_with_403(
    drain: VercelFunction,
    make_function: MakeFunction,
    vercel_collector: Collector,
    signature: str | None,
) -> None:
    messages, _ = function_log_during_outage(make_function, vercel_collector, requests=1)
    delivery = drain_delivery(drain_entries(messages), secret=None)
    headers = dict(delivery.headers)
    if signature is not None:
        headers["x-vercel-signature"] = signature
    requests = vercel_collector.stats()["requests"]  # the metered function's

    response = post(drain, delivery.body, headers)

    assert response.status == 403
    answer = response.json()
    assert answer["error"] == ("unsigned" if signature is None else "invalid_signature")
    assert "x-vercel-signature" in answer["message"]
    assert response.headers["x-vercel-verify"] == VERIFY
    assert vercel_collector.stats()["requests"] == requests  # nothing was sent
    assert_nothing_to_forward_and_no_secret(drain)


def test_a_body_changed_after_signing_is_refused(
    drain: VercelFunction, make_function: MakeFunction, vercel_collector: Collector
) -> None:
    messages, _ = function_log_during_outage(make_function, vercel_collector, requests=1)
    delivery = drain_delivery(drain_entries(messages), secret=SECRET)

    response = post(drain, delivery.body.replace(b"lambda", b"lambdA", 1), delivery.headers)

    assert response.status == 403
    assert response.json()["error"] == "invalid_signature"


@pytest.mark.parametrize(
    ("encoding", "compress", "sign_inflated"),
    [
        ("json", False, False),
        ("ndjson", False, False),
        ("json", True, False),
        ("ndjson", True, True),
    ],
    ids=["json", "ndjson", "json-gzip", "ndjson-gzip-signed-inflated"],
)
def test_a_signed_delivery_is_delivered_once_and_answered_200(
    drain: VercelFunction,
    make_function: MakeFunction,
    vercel_collector: Collector,
    encoding: str,
    compress: bool,
    sign_inflated: bool,
) -> None:
    messages, ids = function_log_during_outage(make_function, vercel_collector)
    # The drain carries every line of the project, the SDK's among others.
    entries = drain_entries(["Listening...", *messages, "GET /api/other 200"])
    delivery = drain_delivery(
        entries, secret=SECRET, encoding=encoding, compress=compress, sign_inflated=sign_inflated
    )

    first = post(drain, delivery.body, delivery.headers)
    again = post(drain, delivery.body, delivery.headers)  # a drain may deliver twice

    assert first.status == 200, first.text
    assert first.json()["delivered"] == len(ids)
    assert again.status == 200, again.text
    assert stored(vercel_collector) == ids
    assert vercel_collector.stats()["duplicates"] == len(ids)  # counted once by Doow
    assert_nothing_to_forward_and_no_secret(drain)


def test_when_doow_fails_the_answer_is_503_and_the_drains_retry_delivers_once(
    drain: VercelFunction, make_function: MakeFunction, vercel_collector: Collector
) -> None:
    messages, ids = function_log_during_outage(make_function, vercel_collector)
    delivery = drain_delivery(drain_entries(messages), secret=SECRET)

    vercel_collector.set_faults({"then": {"status": 503}})
    failed = post(drain, delivery.body, delivery.headers)
    vercel_collector.clear_faults()
    retried = post(drain, delivery.body, delivery.headers)

    assert failed.status == 503
    answer: dict[str, Any] = failed.json()
    assert answer["error"] == "not_delivered"
    assert answer["unsent"] == len(ids)
    assert failed.ok  # answered within the invocation's deadline
    assert retried.status == 200, retried.text
    assert stored(vercel_collector) == ids
    assert vercel_collector.stats()["duplicates"] == 0


def test_a_hanging_doow_gets_a_503_before_the_invocations_deadline(
    make_function: MakeFunction, vercel_collector: Collector
) -> None:
    messages, _ = function_log_during_outage(make_function, vercel_collector, requests=1)
    drain = make_function(
        ENTRYPOINT,
        project_dir=FORWARDER_DIR,
        environment={"DOOW_TRACK_VERCEL_DRAIN_SECRET": SECRET},
        max_duration=2.0,
    )
    delivery = drain_delivery(drain_entries(messages), secret=SECRET)

    vercel_collector.set_faults({"then": {"action": "hang"}})
    try:
        response = post(drain, delivery.body, delivery.headers)
    finally:
        vercel_collector.clear_faults()

    assert response.status == 503
    assert response.ok and response.margin is not None and response.margin > 0
    assert drain.kills == 0


def test_malformed_lines_are_reported_and_the_rest_delivered(
    drain: VercelFunction, make_function: MakeFunction, vercel_collector: Collector
) -> None:
    messages, ids = function_log_during_outage(make_function, vercel_collector, requests=1)
    cut = messages[0][:50] if "doow_unsent" in messages[0] else '{"doow_unsent":{"v":1,'
    entries = drain_entries([cut, '{"doow_unsent": []}', *messages])
    delivery = drain_delivery(entries, secret=SECRET, encoding="ndjson")

    response = post(drain, delivery.body, delivery.headers)

    assert response.status == 200, response.text
    assert response.json()["invalid"] == 2
    assert stored(vercel_collector) == ids


def test_without_a_secret_every_delivery_is_refused_as_not_configured(
    make_function: MakeFunction, vercel_collector: Collector
) -> None:
    drain = make_function(ENTRYPOINT, project_dir=FORWARDER_DIR)
    delivery = drain_delivery(drain_entries(["x"]), secret=SECRET)

    response = post(drain, delivery.body, delivery.headers)

    assert response.status == 500
    assert response.json()["error"] == "not_configured"
    assert "DOOW_TRACK_VERCEL_DRAIN_SECRET" in response.json()["message"]


def test_a_signed_body_that_is_not_gzip_is_a_400(drain: VercelFunction) -> None:
    body = b"\x1f\x8b" + uuid.uuid4().bytes
    response = post(drain, body, {"x-vercel-signature": sign(SECRET, body)})

    assert response.status == 400
    assert json.loads(response.body)["error"] == "undecodable"

"""Fault plans: every step type, switching while running, validation, loopback-only control."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Any

import httpx
import pytest

from doow_serverless_dev.collector import Collector, FaultPlanError
from doow_serverless_dev.collector._http import is_loopback

from .helpers import CollectorFactory, batch, client, event, post


def test_a_status_step_answers_that_status_with_its_headers(collector: Collector) -> None:
    limits = json.dumps({"events": {"limit": 10, "current": 10, "retry_after": 2}})
    collector.set_faults(
        {"script": [{"status": 429, "retry_after": "2", "headers": {"X-Doow-Rate-Limits": limits}}]}
    )
    document = batch([event()])
    with client(collector) as session:
        limited = post(session, document)
        accepted = post(session, document)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert json.loads(limited.headers["X-Doow-Rate-Limits"])["events"]["limit"] == 10
    assert limited.json() == {
        "message": "injected fault: 429 Too Many Requests",
        "errorClass": "TooManyRequests",
    }
    assert accepted.status_code == 202
    assert collector.stats()["events_stored"] == 1
    assert collector.stats()["connections"] == 1  # an error answer keeps the connection


def test_the_script_runs_in_order_then_then_applies(collector: Collector) -> None:
    collector.set_faults(
        {"script": [{"status": 500}, {"status": 429}], "then": {"status": 503, "message": "down"}}
    )
    with client(collector) as session:
        answers = [post(session, batch([event()])) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [500, 429, 503, 503]
    assert answers[3].json() == {"message": "down", "errorClass": "ServiceUnavailable"}
    stats = collector.stats()
    assert stats["requests_by_status"] == {"429": 1, "500": 1, "503": 2}
    assert stats["events_stored"] == 0
    assert collector.faults()["position"] == 2


def test_after_store_proves_a_resend_is_deduplicated(collector: Collector) -> None:
    collector.set_faults({"script": [{"status": 500, "after_store": True}]})
    document = batch([event(), event()])
    with client(collector) as session:
        lost = post(session, document)
        resent = post(session, document)
    assert lost.status_code == 500
    assert (
        lost.json()["message"]
        == "injected fault after storing the batch: 500 Internal Server Error"
    )
    assert resent.status_code == 202
    assert resent.json()["accepted"] == 2
    stats = collector.stats()
    assert (stats["events_stored"], stats["duplicates"]) == (2, 2)


def test_a_refusal_whose_207_a_fault_replaced_is_recorded_as_unanswered(
    collector: Collector,
) -> None:
    collector.set_faults({"script": [{"status": 503, "after_store": True}]})
    invalid = event(kind="LATER")
    document = batch([event(), invalid])
    with client(collector) as session:
        assert post(session, document).status_code == 503
        assert post(session, document).status_code == 207
    refusals = collector.refusals()
    assert [(item["event_id"], item["answered"]) for item in refusals] == [
        (invalid["event_id"], True),  # newest first: the resend's 207 said it
        (invalid["event_id"], False),  # the 503 replaced the 207 that would have
    ]
    assert collector.stats()["events_stored"] == 1


def test_a_413_refuses_the_event_of_a_batch_of_one_and_no_event_of_a_larger_one(
    collector: Collector,
) -> None:
    collector.set_faults({"script": [{"status": 413}, {"status": 413}]})
    alone, pair = event(), [event(), event()]
    with client(collector) as session:
        assert post(session, batch([alone])).status_code == 413
        assert post(session, batch(pair)).status_code == 413  # to be split, not refused
    refusals = collector.refusals()
    assert [(item["event_id"], item["answered"]) for item in refusals] == [
        (alone["event_id"], True)
    ]
    assert refusals[0]["reason"] == "too large (413 by fault plan)"
    assert collector.stats()["events_stored"] == 0


def test_a_reject_step_rejects_the_first_n_valid_events(collector: Collector) -> None:
    collector.set_faults({"script": [{"status": 207, "reject": 2}]})
    invalid = event(kind="LATER")
    sent = [invalid, event(), event(), event()]
    document = batch(sent)
    with client(collector) as session:
        partial = post(session, document)
        resent = post(session, document)
    assert partial.status_code == 207
    body = partial.json()
    assert (body["accepted"], body["rejected"]) == (1, 3)
    assert body["rejections"][1:] == [
        {"event_id": sent[1]["event_id"], "reason": "rejected by fault plan"},
        {"event_id": sent[2]["event_id"], "reason": "rejected by fault plan"},
    ]
    assert [item["event_id"] for item in collector.events()][-1] == sent[3]["event_id"]
    assert resent.status_code == 207  # only the invalid event, this time
    assert resent.json()["accepted"] == 3
    assert collector.stats()["events_stored"] == 3


def test_hang_holds_the_answer_until_faults_are_cleared(collector: Collector) -> None:
    collector.set_faults({"script": [{"action": "hang"}]})
    timer = threading.Timer(0.5, collector.clear_faults)
    timer.start()
    started = time.monotonic()
    with client(collector) as session:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            post(session, batch([event()]))
        elapsed = time.monotonic() - started
        assert post(session, batch([event()])).status_code == 202
    timer.join()
    assert 0.5 <= elapsed < 3.0
    assert collector.stats()["requests_by_status"] == {"202": 1, "hang": 1}
    assert collector.stats()["events_stored"] == 1


def test_hang_after_store_stores_the_batch_and_never_answers(collector: Collector) -> None:
    # The moment a client cannot tell apart from a lost request: the server has the batch.
    collector.set_faults({"script": [{"action": "hang", "after_store": True}]})
    timer = threading.Timer(0.5, collector.clear_faults)
    timer.start()
    sent = event()
    with (
        client(collector) as session,
        pytest.raises(httpx.RemoteProtocolError, match="without sending a response"),
    ):
        post(session, batch([sent]))
    timer.join()
    assert [item["event_id"] for item in collector.events()] == [sent["event_id"]]
    assert collector.stats()["requests_by_status"] == {"hang": 1}


def test_requests_in_progress_count_a_delayed_answer_and_held_ones_a_hang(
    collector: Collector,
) -> None:
    collector.set_faults({"script": [{"action": "accept", "delay_ms": 1500}, {"action": "hang"}]})
    answers: list[int] = []

    def send() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the hang is dropped, unanswered
            answers.append(post(collector, batch([event()])).status_code)

    def seen() -> tuple[dict[str, int], int]:
        stats = collector.stats()  # one snapshot: answers and requests in progress agree
        return stats["requests_by_status"], stats["ingest_in_progress"]

    def held() -> int:
        return int(collector.stats()["ingest_held"])

    def wait_for(condition: Any) -> None:
        give_up = time.monotonic() + 10
        while not condition() and time.monotonic() < give_up:
            time.sleep(0.005)

    senders = [threading.Thread(target=send) for _ in range(2)]
    senders[0].start()
    wait_for(lambda: collector.faults()["position"] == 1)
    senders[1].start()
    # Until the delayed request is answered, only the hang has been, and is not in progress.
    wait_for(lambda: seen() != ({"hang": 1}, 2) and seen()[0] != {})
    assert seen() == ({"hang": 1}, 1)
    senders[0].join()
    assert answers == [202]
    assert collector.stats()["ingest_in_progress"] == 0
    assert held() == 1  # the hang, counted apart
    collector.clear_faults()
    senders[1].join()
    wait_for(lambda: held() == 0)
    assert (collector.stats()["ingest_in_progress"], held()) == (0, 0)


def test_hang_is_ended_by_stop(collector_factory: CollectorFactory) -> None:
    running = collector_factory()
    running.set_faults({"then": {"action": "hang"}})
    errors: list[BaseException] = []

    def send() -> None:
        try:
            post(running, batch([event()]))
        except httpx.TransportError as exc:
            errors.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 5
    while running.stats()["requests_by_status"].get("hang") is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    started = time.monotonic()
    running.stop()
    assert time.monotonic() - started < 3.0
    sender.join(timeout=5)
    assert not sender.is_alive()
    assert len(errors) == 1


def test_reset_aborts_the_connection_without_an_answer(collector: Collector) -> None:
    collector.set_faults({"script": [{"action": "reset"}]})
    document = batch([event()])
    with client(collector) as session:
        with pytest.raises(httpx.ReadError):
            post(session, document)
        assert post(session, document).status_code == 202
    stats = collector.stats()
    assert stats["requests_by_status"] == {"202": 1, "reset": 1}
    assert (stats["events_stored"], stats["duplicates"], stats["connections"]) == (1, 0, 2)


def test_reset_after_store_stores_then_aborts(collector: Collector) -> None:
    collector.set_faults({"script": [{"action": "reset", "after_store": True}]})
    document = batch([event()])
    with client(collector) as session:
        with pytest.raises(httpx.ReadError):
            post(session, document)
        assert post(session, document).status_code == 202
    stats = collector.stats()
    assert (stats["events_stored"], stats["duplicates"]) == (1, 1)


def test_accept_is_normal_processing(collector: Collector) -> None:
    collector.set_faults({"script": [{"action": "accept"}], "then": {"status": 503}})
    with client(collector) as session:
        statuses = [post(session, batch([event()])).status_code for _ in range(2)]
    assert statuses == [202, 503]


def test_delay_and_latency_slow_the_answer(collector: Collector) -> None:
    collector.set_faults({"script": [{"action": "accept", "delay_ms": 300}], "latency_ms": 100})
    with client(collector) as session:
        post(session, batch([event()]))  # warm the connection
        collector.set_faults({"script": [{"status": 503, "delay_ms": 300}], "latency_ms": 100})
        started = time.monotonic()
        delayed = post(session, batch([event()]))
        delayed_s = time.monotonic() - started
        started = time.monotonic()
        latent = post(session, batch([event()]))
        latent_s = time.monotonic() - started
    assert delayed.status_code == 503
    assert 0.4 <= delayed_s < 1.5
    assert latent.status_code == 202
    assert 0.1 <= latent_s < 1.0


def test_a_204_step_keeps_the_connection_usable(collector: Collector) -> None:
    collector.set_faults({"script": [{"status": 204}]})
    with client(collector) as session:
        empty = post(session, batch([event()]))
        accepted = post(session, batch([event()]))
    assert (empty.status_code, empty.content) == (204, b"")
    assert accepted.status_code == 202
    assert collector.stats()["connections"] == 1


def test_faults_are_switched_over_http(collector: Collector) -> None:
    with client(collector) as session:
        set_answer = session.post("/_doow/faults", json={"script": [{"status": 502}]})
        assert set_answer.status_code == 200
        assert set_answer.json() == {
            "plan": {"script": [{"status": 502}]},
            "position": 0,
            "remaining": 1,
        }
        assert post(session, batch([event()])).status_code == 502
        assert session.get("/_doow/faults").json()["remaining"] == 0
        cleared = session.delete("/_doow/faults")
        assert cleared.json() == {"plan": None, "position": 0, "remaining": 0}
        assert post(session, batch([event()])).status_code == 202
        assert session.get("/_doow/stats").json()["events_stored"] == 1
        assert session.post("/_doow/reset").json() == {"reset": True}
    stats = collector.stats()
    assert (stats["events_stored"], stats["requests"]) == (0, 0)


BAD_PLANS: list[tuple[Any, str]] = [
    ([], "a fault plan must be a JSON object"),
    ({"scrip": []}, "plan has unknown key 'scrip'"),
    ({"script": {}}, "script must be an array of steps"),
    ({"script": [{}]}, "script[0] needs 'status' or 'action'"),
    ({"script": [{"status": 503}, {"status": 99}]}, "script[1].status must be an integer"),
    ({"script": [{"status": "503"}]}, "script[0].status must be an integer from 200 to 599"),
    ({"then": {"action": "explode"}}, "then.action must be 'hang', 'reset' or 'accept'"),
    ({"then": {"action": "hang", "status": 500}}, "then has both 'action' and 'status'"),
    ({"then": {"action": "accept", "after_store": True}}, "then has unknown key 'after_store'"),
    ({"then": {"status": 500, "reject": 1}}, "then.reject needs status 207"),
    ({"then": {"status": 207, "reject": -1}}, "then.reject must be a non-negative integer"),
    ({"then": {"status": 500, "after_store": "yes"}}, "then.after_store must be true or false"),
    ({"then": {"status": 500, "headers": {"Bad\nName": "x"}}}, "then.headers has a header name"),
    ({"then": {"status": 500, "headers": {"X-A": "a\r\nb"}}}, "then.headers['X-A'] must be"),
    ({"then": {"status": 500, "headers": {"Content-Length": "1"}}}, "cannot be sent"),
    ({"then": {"status": 429, "retry_after": "1\n"}}, "then.retry_after must be a header value"),
    ({"latency_ms": -1}, "latency_ms must be a number of milliseconds from 0 to 60000"),
    ({"then": {"action": "accept", "delay_ms": True}}, "then.delay_ms must be a number"),
]


@pytest.mark.parametrize(("plan", "expected"), BAD_PLANS)
def test_bad_plans_are_refused_naming_the_problem(
    collector: Collector, plan: Any, expected: str
) -> None:
    collector.set_faults({"then": {"status": 500}})
    with pytest.raises(FaultPlanError) as raised:
        collector.set_faults(plan)
    assert expected in str(raised.value)
    with client(collector) as session:
        answer = session.post("/_doow/faults", json=plan)
    assert answer.status_code == 400
    assert expected in answer.json()["message"]
    assert collector.faults()["plan"] == {"then": {"status": 500}}  # the old plan stays


def test_a_plan_that_is_not_json_is_400(collector: Collector) -> None:
    with client(collector) as session:
        answer = session.post("/_doow/faults", content=b"{script")
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("fault plan is not valid JSON: Expecting")


def _outward_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_control_endpoints_answer_loopback_clients_only(
    collector_factory: CollectorFactory,
) -> None:
    address = _outward_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    running = collector_factory(host="0.0.0.0")
    assert running.url == f"http://127.0.0.1:{running.port}"
    post(running, batch([event()]))
    outside = f"http://{address}:{running.port}"
    with httpx.Client(base_url=outside, timeout=5.0) as session:
        refused = [
            session.get("/_doow/faults"),
            session.post("/_doow/faults", json={"then": {"status": 500}}),
            session.delete("/_doow/faults"),
            session.post("/_doow/reset"),
            session.get("/_doow/stats"),
        ]
        listing = session.get("/events")
    assert [answer.status_code for answer in refused] == [403] * 5
    assert refused[0].json()["errorClass"] == "Forbidden"
    assert len(listing.json()["events"]) == 1
    assert running.faults()["plan"] is None
    assert running.stats()["events_stored"] == 1


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("fe80::1%eth0", False),
        ("192.0.2.7", False),
        ("::ffff:192.0.2.7", False),
        ("localhost", False),  # client addresses are always IP addresses
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback

"""Keep-alive, idle timeouts, slow clients, malformed HTTP, concurrency, shutdown."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from doow_serverless_dev.collector import Collector

from .helpers import CollectorFactory, batch, client, event, json_of, post, raw_exchange, status_of


def test_keep_alive_serves_many_requests_over_one_connection(collector: Collector) -> None:
    with client(collector) as session:
        answers = [post(session, batch([event()])) for _ in range(5)]
        answers.append(session.get("/stats"))
        answers.append(session.get("/"))
    assert [answer.status_code for answer in answers] == [202] * 5 + [200, 200]
    assert all("Content-Length" in answer.headers for answer in answers)
    stats = collector.stats()
    assert stats["connections"] == 1
    assert (stats["requests"], stats["http_requests"]) == (5, 7)


def test_an_idle_connection_is_closed_and_the_client_reconnects(
    collector_factory: CollectorFactory,
) -> None:
    running = collector_factory(idle_timeout=0.3)
    with client(running) as session:
        assert post(session, batch([event()])).status_code == 202
        time.sleep(0.7)
        assert post(session, batch([event()])).status_code == 202
    assert running.stats()["connections"] == 2


def test_the_server_closes_an_idle_connection_after_the_timeout(
    collector_factory: CollectorFactory,
) -> None:
    running = collector_factory(idle_timeout=0.3)
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(65_536)
        started = time.monotonic()
        closed = sock.recv(65_536)
        idle = time.monotonic() - started
    assert status_of(answer) == 200
    assert closed == b""
    assert 0.2 <= idle < 2.0


def test_a_stalled_client_does_not_stop_others(collector_factory: CollectorFactory) -> None:
    running = collector_factory(idle_timeout=1.5)
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as stalled:
        stalled.sendall(
            b"POST /telemetry/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dk_test_1\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        with client(running) as session:
            answers = [post(session, batch([event()])).status_code for _ in range(10)]
        stalled.setblocking(False)
        with pytest.raises(BlockingIOError):  # still waiting for its body, unanswered
            stalled.recv(1)
        stalled.settimeout(5)
        refused = stalled.recv(65_536)
        assert stalled.recv(65_536) == b""
    assert answers == [202] * 10
    assert status_of(refused) == 408
    assert json_of(refused)["message"] == "timed out waiting for the request body"
    assert running.stats()["events_stored"] == 10


def test_half_sent_headers_are_dropped_after_the_idle_timeout(
    collector_factory: CollectorFactory,
) -> None:
    running = collector_factory(idle_timeout=0.3)
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        sock.sendall(b"POST /telemetry/events HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert sock.recv(65_536) == b""
        assert time.monotonic() - started < 2.0
    assert post(running, batch([event()])).status_code == 202


def test_concurrent_clients_are_all_stored(collector: Collector) -> None:
    def send(_: int) -> list[int]:
        with client(collector) as session:
            return [post(session, batch([event(), event()])).status_code for _ in range(15)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [status for result in pool.map(send, range(8)) for status in result]
    assert statuses == [202] * 120
    stats = collector.stats()
    assert (stats["events_stored"], stats["connections"], stats["batches"]) == (240, 8, 120)


def test_stop_is_prompt_with_idle_keep_alive_connections(
    collector_factory: CollectorFactory,
) -> None:
    running = collector_factory(idle_timeout=30)
    with client(running) as session:
        assert session.get("/healthz").status_code == 200
        started = time.monotonic()
        running.stop()
        assert time.monotonic() - started < 1.5
        with pytest.raises(httpx.TransportError):
            session.get("/healthz")


def test_a_stopped_collector_refuses_use_and_a_second_start() -> None:
    running = Collector().start()
    running.stop()
    running.stop()  # idempotent
    with pytest.raises(RuntimeError, match="not running"):
        running.stats()
    with pytest.raises(RuntimeError, match="only once"):
        running.start()


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (b"HELLO\r\n\r\n", 400, "Bad request syntax ('HELLO')"),
        (b"GET / HTTP/2.0\r\n\r\n", 400, "Invalid HTTP version (2.0)"),
        (b"GET / HTTP/x.y\r\n\r\n", 400, "Bad request version ('HTTP/x.y')"),
        (b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method 'BREW' is not allowed"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "URI Too Long"),
        (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431, "Too many headers"),
    ],
)
def test_malformed_http_gets_a_json_4xx_and_a_close(
    collector: Collector, request_bytes: bytes, status: int, message: str
) -> None:
    answer = raw_exchange(collector, request_bytes)
    assert status_of(answer) == status
    assert json_of(answer)["message"].endswith(message)  # 3.13 renamed "Request-URI Too Long"
    assert b"\r\nConnection: close\r\n" in answer
    assert post(collector, batch([event()])).status_code == 202


def test_a_connection_that_closes_mid_body_is_dropped_quietly(collector: Collector) -> None:
    request = (
        b"POST /telemetry/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dk_test_1\r\n"
        b'Content-Length: 1000\r\n\r\n{"events": ['
    )
    with socket.create_connection(("127.0.0.1", collector.port), timeout=5) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(65_536) == b""
    assert post(collector, batch([event()])).status_code == 202
    assert collector.stats()["events_stored"] == 1


def test_ipv6_loopback_works_when_available() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support in this Python")
    try:
        running = Collector(host="::1").start()
    except OSError as exc:
        pytest.skip(f"cannot bind ::1 here: {exc}")
    try:
        assert running.url == f"http://[::1]:{running.port}"
        assert post(running, batch([event()])).status_code == 202
        with httpx.Client(base_url=running.url) as session:
            assert session.get("/_doow/faults").status_code == 200  # ::1 is loopback
    finally:
        running.stop()


def test_threads_do_not_pile_up_across_collectors() -> None:
    before = threading.active_count()
    for _ in range(5):
        with Collector() as running:
            post(running, batch([event()]))
    time.sleep(0.1)
    assert threading.active_count() <= before + 1

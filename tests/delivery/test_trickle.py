"""A server that trickles its answer cannot stretch a flush past its budget.

httpx times each socket read separately; a byte every 0.2 s would keep a 1 s read timeout
from ever firing. The tracker clips every socket operation to the request's deadline.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from doow_serverless import DoowDeliveryError, DoowTracker

from .conftest import KEY, track_many
from .test_deadlines import TOLERANCE_S

ANSWER = (
    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"X-Padding: " + b"p" * 200 + b"\r\n\r\n{}"
)


@pytest.fixture
def trickling_server() -> Iterator[str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65_536)
                for byte in ANSWER:
                    if stop.wait(0.2):
                        return
                    try:
                        connection.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    listener.close()


def test_a_trickling_answer_cannot_hold_a_flush_past_its_budget(trickling_server: str) -> None:
    tracker = DoowTracker(
        KEY,
        endpoint=trickling_server,
        timeout=1.0,
        retry_count=0,
        environ={"AWS_LAMBDA_FUNCTION_NAME": "test"},
    )
    track_many(tracker, 2)
    started = time.monotonic()
    result = tracker.flush(timeout=1.0)
    elapsed = time.monotonic() - started
    assert elapsed <= 1.0 + TOLERANCE_S, elapsed
    assert result.pending == 2
    assert isinstance(result.error, DoowDeliveryError)
    assert "Timeout" in str(result.error)
    tracker.shutdown(timeout=0)

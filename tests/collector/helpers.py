"""Building and sending ingest requests for the collector tests."""

from __future__ import annotations

import gzip
import json
import socket
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from doow_serverless_dev.collector import Collector

CollectorFactory = Callable[..., Collector]  # the collector_factory fixture

KEY = "dk_test_0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
INGEST = "/telemetry/events"


def event(**overrides: Any) -> dict[str, Any]:
    """A valid event document, as the official SDKs send it."""
    document: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "license_id": "lic_test",
        "occurred_at": "2026-11-22T10:15:30.123Z",
        "source_system": "sdk",
        "kind": "USAGE",
        "unit": "tokens",
        "attribution": {"model": "gpt-4o", "team": "platform"},
        "metadata": {"request_id": "req_1"},
        "measurements": [{"metric_name": "tokens", "quantity": 10}],
    }
    document.update(overrides)
    return document


def metric_event(metric: str, quantity: float, license_id: str = "lic_test") -> dict[str, Any]:
    return event(
        license_id=license_id, measurements=[{"metric_name": metric, "quantity": quantity}]
    )


def batch(events: list[Any], batch_id: str | None = None) -> dict[str, Any]:
    return {"batch_id": batch_id or str(uuid.uuid4()), "sdk_version": "0.1.0", "events": events}


def body_of(document: Any, *, compress: bool = False) -> bytes:
    raw = json.dumps(document).encode()
    return gzip.compress(raw) if compress else raw


def client(collector: Collector, **options: Any) -> httpx.Client:
    headers = {**AUTH, "Content-Type": "application/json"}
    return httpx.Client(base_url=collector.url, headers=headers, timeout=10.0, **options)


def post(
    target: Collector | httpx.Client,
    document: Any = None,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    compress: bool = False,
) -> httpx.Response:
    """POST a batch (a document, or raw bytes) to the ingest path."""
    if content is None:
        content = body_of(document, compress=compress)
    extra = dict(headers or {})
    if compress:
        extra.setdefault("Content-Encoding", "gzip")
    if isinstance(target, httpx.Client):
        return target.post(INGEST, content=content, headers=extra)
    with client(target) as session:
        return session.post(INGEST, content=content, headers=extra)


def raw_exchange(collector: Collector, request: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes over a fresh TCP connection; everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", collector.port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65_536):
            received += chunk
    return received


def status_of(response: bytes) -> int:
    status_line = response.split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def json_of(response: bytes) -> Any:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])

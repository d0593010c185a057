"""A function whose instance SIGKILLs itself at a chosen moment of its flush (``KILL_AT``):
the same requests served as a ``handler`` class and as an ASGI ``app`` (pick one with the
entrypoint's variable).

Fault injection, not a stand-in: the runtime, the tracker and the collector are real; the
process dies as an out-of-memory kill or a crash in native code would kill it, at an exact
step that a test cannot otherwise hit: ``before-spool`` (its line written, its spool file
not), ``after-spool`` (spooled, no request made yet), ``flush-begins`` (the response sent,
and the flush handed to ``wait_until`` just starting, before it does anything). Other
moments (a request in flight, a batch stored but not answered) are reached from outside,
by the test.

``GET /?run=R&count=N`` tracks N events keyed ``R:0`` ... ``R:N-1``; ``leave_ms=M`` works
until M ms are left before the invocation's deadline (negative: past it), and
``track_first=0`` tracks as the work ends rather than before it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.server import BaseHTTPRequestHandler
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs, urlsplit

from doow_serverless import DoowTracker, with_vercel
from doow_serverless._durability import spool
from doow_serverless._invocation import engine

KILL_AT = os.environ.get("KILL_AT", "")
LICENSE = "lic_kill_points"

Message = MutableMapping[str, Any]


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if KILL_AT in ("before-spool", "after-spool"):
    _save = spool.Spool.save

    def _save_then_die(self: spool.Spool, batch_id: str, body: bytes) -> bool:
        if KILL_AT == "before-spool":
            _die()
        saved = _save(self, batch_id, body)
        _die()
        return saved

    spool.Spool.save = _save_then_die  # type: ignore[method-assign]

if KILL_AT == "flush-begins":
    # What the work handed to wait_until runs first, once the response is out.
    async def _die_as_the_flush_begins(self: engine.Invocation) -> None:
        _die()

    engine.Invocation.afinish = _die_as_the_flush_begins  # type: ignore[method-assign]

tracker = DoowTracker()


class Plan:
    """What one request asks for, from its query string."""

    def __init__(self, target: str) -> None:
        query = {key: values[0] for key, values in parse_qs(urlsplit(target).query).items()}
        self.run = query["run"]
        self.count = int(query.get("count", "3"))
        self.leave_ms = float(query["leave_ms"]) if "leave_ms" in query else None
        self.track_first = query.get("track_first", "1") == "1"

    def track(self) -> None:
        for n in range(self.count):
            key = f"{self.run}:{n}"
            tracker.track(metric="api_calls", quantity=1, license_id=LICENSE, idempotency_key=key)

    def working(self) -> bool:
        return self.leave_ms is not None and _ms_left() > self.leave_ms

    def answer(self) -> bytes:
        return json.dumps({"tracked": self.count, "remaining_ms": _ms_left()}).encode()


def _ms_left() -> float:
    """The runtime's deadline for this request (the x-vercel-internal-deadline header)."""
    deadline = import_module("vercel_runtime").get_deadline()
    return 0.0 if deadline is None else float(deadline.timestamp() - time.time()) * 1000


@with_vercel(tracker)
class handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        plan = Plan(self.path)
        if plan.track_first:
            plan.track()
        while plan.working():
            time.sleep(0.002)
        if not plan.track_first:
            plan.track()
        body = plan.answer()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


async def _asgi(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    query = scope.get("query_string", b"").decode()
    plan = Plan(f"/?{query}")
    if plan.track_first:
        plan.track()
    while plan.working():
        await asyncio.sleep(0.002)
    if not plan.track_first:
        plan.track()
    body = plan.answer()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


app = with_vercel(tracker)(_asgi)

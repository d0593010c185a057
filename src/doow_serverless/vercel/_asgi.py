"""ASGI apps (FastAPI, Starlette & co.): the flush follows the final body message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from .._invocation.engine import Invocation
from ._runner import Runner, Wrapped, must_hold_response

if TYPE_CHECKING:  # annotations only: nothing to build at import
    ASGIMessage = MutableMapping[str, Any]
    ASGIReceive = Callable[[], Awaitable[ASGIMessage]]
    ASGISend = Callable[[ASGIMessage], Awaitable[None]]

_VERCEL_ID_ASGI = b"x-vercel-id"


class ASGIApp(Wrapped):
    """An ASGI app whose requests are flushed after the final body message."""

    __slots__ = ()

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: ASGIReceive, send: ASGISend
    ) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):  # lifespan: not a request
            await self._doow_app(scope, receive, send)
            return
        runner: Runner = self._doow_runner
        invocation = runner.begin(_asgi_header(scope, _VERCEL_ID_ASGI))
        if kind == "http":
            held = must_hold_response()
            send = (_HeldEnd if held else _KeptEnd)(send, invocation)
        try:
            with invocation.entered():
                await self._doow_app(scope, receive, send)
        finally:
            # After the app returned: its final body message, and any background task
            # that ran after it, are done. A held response was flushed already: the
            # invocation flushes once (events left go at the next request).
            await runner.afinish(invocation)


def _asgi_header(scope: Mapping[str, Any], name: bytes) -> str | None:
    try:
        for key, value in scope.get("headers") or ():
            if key.lower() == name:
                return bytes(value).decode("latin-1")
    except Exception:
        return None
    return None


class _KeptEnd:
    """An ASGI ``send`` that keeps the request's events (log line, spool) just before the
    final body message goes out: the instance may die once the client has its answer,
    before the flush handed to ``wait_until`` runs."""

    __slots__ = ("_invocation", "_send")

    def __init__(self, send: ASGISend, invocation: Invocation) -> None:
        self._send = send
        self._invocation = invocation

    async def __call__(self, message: ASGIMessage) -> None:
        if message.get("type") == "http.response.body" and not message.get("more_body", False):
            self._invocation.keep()
        await self._send(message)


class _HeldEnd:
    """An ASGI ``send`` that flushes before the final body message goes out.

    The start message is held too: with a ``content-length`` of 0 it would complete the
    response on its own.
    """

    __slots__ = ("_invocation", "_send", "_start")

    def __init__(self, send: ASGISend, invocation: Invocation) -> None:
        self._send = send
        self._invocation = invocation
        self._start: ASGIMessage | None = None

    async def __call__(self, message: ASGIMessage) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            self._start = message
            return
        if kind == "http.response.body" and not message.get("more_body", False):
            await self._invocation.afinish()
        if self._start is not None:
            start, self._start = self._start, None
            await self._send(start)
        await self._send(message)

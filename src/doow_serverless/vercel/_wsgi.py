"""WSGI apps (Flask & co.): the flush follows the response body's ``close()``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .._invocation.engine import Invocation
from ._runner import Runner, Wrapped, must_hold_response

if TYPE_CHECKING:  # annotations only: nothing to build at import
    WSGICallable = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_VERCEL_ID_WSGI = "HTTP_X_VERCEL_ID"


class WSGIApp(Wrapped):
    """A WSGI app whose requests are flushed after the response body is produced."""

    __slots__ = ()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        runner: Runner = self._doow_runner
        invocation = runner.begin(environ.get(_VERCEL_ID_WSGI))
        if must_hold_response():
            return _held_response(self._doow_app, environ, start_response, invocation)
        try:
            with invocation.entered():
                result = self._doow_app(environ, start_response)
        except BaseException:
            runner.finish(invocation)
            raise
        return _ClosingBody(result, runner, invocation)


class _ClosingBody:
    """The app's response body; the flush follows its ``close()``.

    Iterating (a generator app tracks as it yields) and closing run in the request's id
    scope, so every event of the request gets a derived id.
    """

    __slots__ = ("_body", "_finished", "_invocation", "_iterator", "_runner")

    def __init__(self, body: Iterable[bytes], runner: Runner, invocation: Invocation) -> None:
        self._body = body
        self._iterator: Iterator[bytes] | None = None
        self._runner = runner
        self._invocation = invocation
        self._finished = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        with self._invocation.entered():
            if self._iterator is None:
                self._iterator = iter(self._body)
            return next(self._iterator)

    def close(self) -> None:
        if self._finished:
            return
        self._finished = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                with self._invocation.entered():
                    close()
        finally:
            self._runner.finish(self._invocation)


def _held_response(
    app: WSGICallable,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    invocation: Invocation,
) -> Iterable[bytes]:
    """Run the whole response, flush, then hand it to the server (runtime's Lambda mode)."""
    started: list[tuple[str, list[tuple[str, str]], Any]] = []
    parts: list[bytes] = []

    def held_start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        if exc_info is not None and started and parts:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [(status, headers, exc_info)]
        return parts.append

    try:
        with invocation.entered():
            body = app(environ, held_start_response)
            try:
                parts.extend(body)
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
    finally:
        invocation.finish()
    if not started:
        raise RuntimeError("the WSGI app returned without calling start_response")
    status, headers, exc_info = started[0]
    start_response(status, headers, exc_info)
    return parts

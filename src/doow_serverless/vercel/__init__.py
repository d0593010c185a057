"""Vercel: flush the tracker after every request, within the invocation's deadline.

A Vercel Python function exposes ``handler`` (a ``BaseHTTPRequestHandler`` subclass) or
``app`` (WSGI, such as Flask; ASGI, such as FastAPI or Starlette). ``with_vercel`` wraps
any of the three and gives back the same kind of object, so the runtime still finds it:

    tracker = DoowTracker()                        # module level: once per instance
    app = with_vercel(tracker)(Flask(__name__))    # or FastAPI(), or:

    @with_vercel                                   # or @with_vercel(tracker), @tracker.with_vercel
    class handler(BaseHTTPRequestHandler): ...

Per request this module finds three things and leaves the rest to ``_invocation``:

- the id: the ``x-vercel-id`` request header, from which event ids are derived;
- the deadline: ``vercel_runtime.get_deadline()`` (what ``vercel.functions.get_deadline()``
  reads), else ``max_duration`` seconds from the request's start;
- where to flush. The response is produced first (a handler's ``do_*`` method returned, a
  WSGI iterable was closed, an ASGI app sent its final body message and returned). Then,
  where Vercel's runtime reports the invocation's end only after the work handed to
  ``vercel.functions.wait_until`` (its IPC mode), the flush is handed to it and runs
  after the response, off any event loop. Where work after the response could be frozen
  (the runtime's older Lambda mode), the end of the response is held back until the flush
  is done. Anywhere else it runs right after the response.

Importing this module imports nothing from Vercel, Flask, Starlette, ``http.server``,
``inspect`` or ``asyncio``: what is needed is looked up on the first request.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from .._client.tracker import DoowTracker
from .._core.constants import LOGGER_NAME
from .._core.errors import DoowConfigError
from .._invocation.engine import (
    FlushPolicy,
    Idempotency,
    check_idempotency,
    default_tracker,
    flush_off_loop,
    flush_quietly,
    is_coroutine_function,
    resolve_flush_policy,
    scope_id,
)
from .._invocation.scope import InvocationScope, current_scope
from .._invocation.watch import unwatch, watch

__all__ = ["VercelDecorator", "default_tracker", "with_vercel"]

logger = logging.getLogger(LOGGER_NAME)

T = TypeVar("T")

# Seconds, as in vercel.json's "maxDuration". No variable of Vercel's own carries it.
ENV_MAX_DURATION = "DOOW_TRACK_VERCEL_MAX_DURATION"
# Used only when the runtime gives no deadline (runtimes before vercel-runtime's
# x-vercel-internal-deadline, `vercel dev` without it, or outside Vercel). 10 s is the
# smallest default limit Vercel has applied to a function (Hobby, before Fluid compute):
# assuming less time than there is can only shorten a flush, and what does not fit stays
# queued for the next request; assuming more could let the flush run into a kill.
DEFAULT_MAX_DURATION_S = 10.0

VERCEL_ID_HEADER = "x-vercel-id"
_VERCEL_ID_ASGI = b"x-vercel-id"
_VERCEL_ID_WSGI = "HTTP_X_VERCEL_ID"

if TYPE_CHECKING:  # annotations only: nothing to build at import
    WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
    ASGIMessage = MutableMapping[str, Any]
    ASGIReceive = Callable[[], Awaitable[ASGIMessage]]
    ASGISend = Callable[[ASGIMessage], Awaitable[None]]


class VercelDecorator(Protocol):
    """What ``with_vercel(...)`` returns: wraps a handler class, WSGI app or ASGI app."""

    def __call__(self, target: T, /) -> T: ...


@overload
def with_vercel(
    tracker: DoowTracker | None = None,
    /,
    *,
    flush_timeout: float | None = None,
    reserve: float | None = None,
    max_duration: float | None = None,
    idempotency: Idempotency = "invocation",
) -> VercelDecorator: ...


@overload
def with_vercel(target: T, /) -> T: ...


def with_vercel(
    target: Any = None,
    /,
    *,
    flush_timeout: float | None = None,
    reserve: float | None = None,
    max_duration: float | None = None,
    idempotency: Idempotency = "invocation",
) -> Any:
    """Wrap a Vercel ``handler`` class or ``app`` so the tracker is flushed for every request.

    The flush takes at most ``min(flush_timeout, time left - reserve)`` seconds. The time
    left is measured to the invocation's deadline as the runtime gives it; without one, to
    ``max_duration`` seconds after the request started (argument, else
    ``DOOW_TRACK_VERCEL_MAX_DURATION`` in seconds, else 10 s: set it to your
    ``maxDuration``). Events that do not fit stay queued and go first next time. The
    response, or the exception, is the app's, whatever the flush does.

    ``flush_timeout`` and ``reserve`` are seconds; unset, they come from
    ``DOOW_TRACK_FLUSH_TIMEOUT`` / ``DOOW_TRACK_FLUSH_RESERVE`` (milliseconds), else 2 s and
    0.25 s. ``idempotency="invocation"`` derives event ids from the ``x-vercel-id``
    request header, so the same request seen twice is counted once; ``"attempt"`` gives
    every request fresh ids.

    A handler class comes back as a subclass with its ``do_*`` methods wrapped; an app as
    a wrapper of the same interface (WSGI or ASGI) that forwards attribute access, so
    ``@app.route(...)`` still works on it. Without a tracker, :func:`default_tracker`.
    """
    if target is None or isinstance(target, DoowTracker):
        return _decorator(target, flush_timeout, reserve, max_duration, idempotency)
    return _decorator(None, flush_timeout, reserve, max_duration, idempotency)(target)


def _decorator(
    tracker: DoowTracker | None,
    flush_timeout: float | None,
    reserve: float | None,
    max_duration: float | None,
    idempotency: str,
) -> VercelDecorator:
    # Options are checked at decoration, while the function initialises, not per request.
    policy = resolve_flush_policy(flush_timeout, reserve)
    limit = resolve_max_duration(max_duration)
    mode = check_idempotency(idempotency)

    def decorate(target: T, /) -> T:
        kind = _kind_of(target)
        chosen = tracker if tracker is not None else default_tracker()
        if not os.environ.get("VERCEL_IPC_PATH"):
            # Import httpx and build the client now, not in the first request. Not in the
            # runtime's IPC mode: there the platform sends the first request only once the
            # module is imported, while the first flush runs after the first response, so
            # building the client then keeps ~60-100 ms off the cold start's response.
            chosen.prepare()
        runner = _Runner(chosen, policy, limit, mode)
        if kind == "handler":
            wrapped: Any = _wrap_handler_class(target, runner)  # type: ignore[arg-type]
        elif kind == "asgi":
            inner = getattr(target, "asgi", None)
            wrapped = _ASGIApp(inner if _is_callable_asgi_attribute(inner) else target, runner)
        else:
            wrapped = _WSGIApp(target, runner)
        return wrapped  # type: ignore[no-any-return]

    return decorate


def resolve_max_duration(value: float | None, environ: Mapping[str, str] | None = None) -> float:
    """The fallback limit in seconds: the argument, else the variable, else 10 s."""
    if value is not None:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (value > 0 and math.isfinite(value))
        ):
            raise DoowConfigError(f"max_duration must be a number of seconds > 0, got {value!r}")
        return float(value)
    environ = os.environ if environ is None else environ
    text = environ.get(ENV_MAX_DURATION, "").strip()
    if not text:
        return DEFAULT_MAX_DURATION_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not (seconds > 0 and math.isfinite(seconds)):
        logger.warning(
            "doow-serverless: %s must be a number of seconds > 0, got %r; using %s s",
            ENV_MAX_DURATION,
            text[:40],
            int(DEFAULT_MAX_DURATION_S),
        )
        return DEFAULT_MAX_DURATION_S
    return seconds


# ----------------------------------------------------------------------------------
# What the wrapped object is, decided as the runtime decides it


def _kind_of(target: object) -> str:
    if isinstance(target, _Wrapped) or getattr(target, "_doow_vercel", False):
        raise DoowConfigError("with_vercel: this object is already wrapped")
    if isinstance(target, type):
        # A subclass of BaseHTTPRequestHandler means http.server is already imported.
        server = sys.modules.get("http.server")
        if server is not None and issubclass(target, server.BaseHTTPRequestHandler):
            return "handler"
        raise DoowConfigError(
            f"with_vercel expects a BaseHTTPRequestHandler subclass, a WSGI app or an ASGI "
            f"app, got the class {target.__qualname__}"
        )
    if not callable(target):
        raise DoowConfigError(
            f"with_vercel expects a DoowTracker, a BaseHTTPRequestHandler subclass, a WSGI "
            f"app or an ASGI app, got {type(target).__name__}"
        )
    if _is_callable_asgi_attribute(getattr(target, "asgi", None)) or is_coroutine_function(target):
        return "asgi"
    return "wsgi"


def _is_callable_asgi_attribute(value: object) -> bool:
    return value is not None and callable(value)


# ----------------------------------------------------------------------------------
# One request: its id scope, its deadline, and the flush at its end


class _Request:
    __slots__ = ("deadline", "guard", "scope")

    def __init__(self, scope: InvocationScope, deadline: float, guard: int | None) -> None:
        self.scope = scope
        self.deadline = deadline  # time.monotonic() value
        self.guard = guard  # the deadline watch's token (see _watch)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


class _Runner:
    """What every wrapped request shares: the tracker, the policy and the fallback limit."""

    __slots__ = ("idempotency", "max_duration", "policy", "tracker")

    def __init__(
        self,
        tracker: DoowTracker,
        policy: FlushPolicy,
        max_duration: float,
        idempotency: Idempotency,
    ) -> None:
        self.tracker = tracker
        self.policy = policy
        self.max_duration = max_duration
        self.idempotency = idempotency

    def begin(self, vercel_id: object) -> _Request:
        started = time.monotonic()
        request_id = vercel_id if isinstance(vercel_id, str) and vercel_id else None
        scope = InvocationScope(scope_id(request_id, self.idempotency))
        left = _runtime_time_left()
        time_left = self.max_duration if left is None else left
        guard = watch(self.tracker, time_left, self.policy.reserve)
        return _Request(scope, started + time_left, guard)

    def budget(self, request: _Request) -> float:
        return self.policy.budget(request.remaining())

    def flush_now(self, request: _Request) -> None:
        unwatch(request.guard)
        flush_quietly(self.tracker, self.budget(request))

    async def aflush_now(self, request: _Request) -> None:
        unwatch(request.guard)
        await flush_off_loop(self.tracker, self.budget(request))

    def finish(self, request: _Request) -> None:
        """After the response: hand the flush to wait_until, or else flush here."""
        if not _handed_to_wait_until(self, request):
            self.flush_now(request)

    async def afinish(self, request: _Request) -> None:
        if not _handed_to_wait_until(self, request):
            await self.aflush_now(request)


async def _flush_after_response(runner: _Runner, request: _Request) -> None:
    # The budget is taken when the runtime runs this, after the response, not before.
    await runner.aflush_now(request)


def _handed_to_wait_until(runner: _Runner, request: _Request) -> bool:
    """Give the flush to ``vercel.functions.wait_until``; False where it would not run."""
    wait_until = _wait_until()
    if wait_until is None:
        return False
    work = _flush_after_response(runner, request)
    try:
        wait_until(work)
    except Exception:  # e.g. "cannot be called after the invocation ended" (WebSocket)
        work.close()
        return False
    # Outside an invocation wait_until silently closes the coroutine instead of keeping
    # it: a closed coroutine has no frame.
    if getattr(work, "cr_frame", None) is None:
        return False
    logger.debug("doow-serverless: the flush runs after the response (wait_until)")
    return True


_MISSING: Any = object()
_wait_until_function: Any = _MISSING
_get_deadline_function: Any = _MISSING


def _wait_until() -> Callable[[Awaitable[object]], None] | None:
    """``vercel.functions.wait_until`` where its work runs before the invocation ends."""
    global _wait_until_function  # noqa: PLW0603 - looked up once per process
    if _must_hold_response():
        # The runtime's Lambda mode answers Lambda as soon as the body is read; work
        # after it would run in a frozen process. The response is held back instead.
        return None
    if _wait_until_function is _MISSING:
        from importlib import import_module  # noqa: PLC0415 - not at cold start

        try:
            _wait_until_function = import_module("vercel.functions").wait_until
        except ImportError:  # the `vercel` package is not installed
            _wait_until_function = None
        except Exception:  # a broken install must not break requests
            logger.warning(
                "doow-serverless: vercel.functions.wait_until is unusable; flushing before "
                "each request ends instead",
                exc_info=True,
            )
            _wait_until_function = None
    result: Callable[[Awaitable[object]], None] | None = _wait_until_function
    return result


def _runtime_time_left() -> float | None:
    """Seconds to the invocation's deadline as the runtime has it, or None."""
    global _get_deadline_function  # noqa: PLW0603 - looked up once per process
    if _get_deadline_function is _MISSING:
        from importlib import import_module  # noqa: PLC0415 - not at cold start

        try:
            _get_deadline_function = import_module("vercel_runtime").get_deadline
        except Exception:  # not in the runtime, or a runtime without deadlines
            _get_deadline_function = None
    if _get_deadline_function is None:
        return None
    try:
        deadline = _get_deadline_function()
        if deadline is None:
            return None
        return float(deadline.timestamp() - time.time())
    except Exception:
        logger.exception("doow-serverless: could not read the invocation's deadline")
        return None


def _must_hold_response() -> bool:
    """Whether work after the response could be frozen (the runtime's Lambda mode)."""
    environ = os.environ
    return bool(environ.get("AWS_LAMBDA_FUNCTION_NAME")) and not environ.get("VERCEL_IPC_PATH")


# ----------------------------------------------------------------------------------
# BaseHTTPRequestHandler subclasses


def _wrap_handler_class(cls: type[Any], runner: _Runner) -> type[Any]:
    namespace: dict[str, Any] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__wrapped__": cls,
        "_doow_vercel": True,
    }
    methods = [name for name in dir(cls) if name.startswith("do_")]
    if not methods:
        raise DoowConfigError(f"with_vercel: {cls.__qualname__} defines no do_* method")
    for name in methods:
        method = getattr(cls, name)
        if callable(method):
            namespace[name] = _wrap_do_method(method, runner)
    metaclass: Callable[..., type[Any]] = type(cls)
    return metaclass(cls.__name__, (cls,), namespace)


def _wrap_do_method(method: Callable[..., Any], runner: _Runner) -> Callable[..., Any]:
    @functools.wraps(method)
    def do(self: Any, *args: Any, **kwargs: Any) -> Any:
        request = runner.begin(_header(getattr(self, "headers", None), VERCEL_ID_HEADER))
        hold = _must_hold_response()
        if hold:
            # Keep the whole response until the flush is done: the runtime's Lambda mode
            # buffers it anyway, and would answer Lambda once the body is read.
            held = _HeldWrites(self.wfile)
            self.wfile = held
        token = current_scope.set(request.scope)
        try:
            return method(self, *args, **kwargs)
        finally:
            current_scope.reset(token)
            if hold:
                try:
                    runner.flush_now(request)
                finally:
                    self.wfile = held.release()
            else:
                runner.finish(request)

    return do


def _header(headers: object, name: str) -> str | None:
    get = getattr(headers, "get", None)
    if get is None:
        return None
    try:
        value = get(name)
    except Exception:
        return None
    return value if isinstance(value, str) else None


class _HeldWrites:
    """Stands in for a handler's ``wfile`` and sends what was written when released."""

    def __init__(self, wfile: Any) -> None:
        self._wfile = wfile
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def writelines(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Held until release: the response must not be complete before the flush."""

    def release(self) -> Any:
        if self._parts:
            self._wfile.write(b"".join(self._parts))
            self._parts.clear()
        self._wfile.flush()
        return self._wfile

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wfile, name)


# ----------------------------------------------------------------------------------
# WSGI and ASGI apps


class _Wrapped:
    """Base of the app wrappers: forwards attribute access to the app it wraps."""

    __slots__ = ("_doow_app", "_doow_runner")
    _doow_vercel = True
    _doow_app: Any

    def __init__(self, app: Any, runner: _Runner) -> None:
        self._doow_app = app
        self._doow_runner = runner

    def __getattr__(self, name: str) -> Any:
        # Never "asgi": the runtime would call that instead of this wrapper.
        if name == "asgi" or (name.startswith("__") and name.endswith("__")):
            raise AttributeError(name)
        return getattr(self._doow_app, name)

    def __repr__(self) -> str:
        return f"with_vercel({self._doow_app!r})"


class _WSGIApp(_Wrapped):
    """A WSGI app whose requests are flushed after the response body is produced."""

    __slots__ = ()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        runner: _Runner = self._doow_runner
        request = runner.begin(environ.get(_VERCEL_ID_WSGI))
        if _must_hold_response():
            return _held_wsgi_response(self._doow_app, environ, start_response, runner, request)
        token = current_scope.set(request.scope)
        try:
            result = self._doow_app(environ, start_response)
        except BaseException:
            current_scope.reset(token)
            runner.finish(request)
            raise
        current_scope.reset(token)
        return _ClosingBody(result, runner, request)


class _ClosingBody:
    """The app's response body; the flush follows its ``close()``.

    Iterating (a generator app tracks as it yields) and closing run in the request's id
    scope, so every event of the request gets a derived id.
    """

    __slots__ = ("_body", "_finished", "_iterator", "_request", "_runner")

    def __init__(self, body: Iterable[bytes], runner: _Runner, request: _Request) -> None:
        self._body = body
        self._iterator: Iterator[bytes] | None = None
        self._runner = runner
        self._request = request
        self._finished = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        token = current_scope.set(self._request.scope)
        try:
            if self._iterator is None:
                self._iterator = iter(self._body)
            return next(self._iterator)
        finally:
            current_scope.reset(token)

    def close(self) -> None:
        if self._finished:
            return
        self._finished = True
        token = current_scope.set(self._request.scope)
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            current_scope.reset(token)
            self._runner.finish(self._request)


def _held_wsgi_response(
    app: WSGIApp,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    runner: _Runner,
    request: _Request,
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

    token = current_scope.set(request.scope)
    try:
        body = app(environ, held_start_response)
        try:
            parts.extend(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
    finally:
        current_scope.reset(token)
        runner.flush_now(request)
    if not started:
        raise RuntimeError("the WSGI app returned without calling start_response")
    status, headers, exc_info = started[0]
    start_response(status, headers, exc_info)
    return parts


class _ASGIApp(_Wrapped):
    """An ASGI app whose requests are flushed after the final body message."""

    __slots__ = ()

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: ASGIReceive, send: ASGISend
    ) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):  # lifespan: not a request
            await self._doow_app(scope, receive, send)
            return
        runner: _Runner = self._doow_runner
        request = runner.begin(_asgi_header(scope, _VERCEL_ID_ASGI))
        if kind == "http" and _must_hold_response():
            send = _HeldEnd(send, runner, request)
        token = current_scope.set(request.scope)
        try:
            await self._doow_app(scope, receive, send)
        finally:
            current_scope.reset(token)
            # After the app returned: its final body message, and any background task
            # that ran after it, are done. A held response was flushed already: a second
            # flush would spend the budget again (events left go at the next request).
            if not (isinstance(send, _HeldEnd) and send.flushed):
                await runner.afinish(request)


def _asgi_header(scope: Mapping[str, Any], name: bytes) -> str | None:
    try:
        for key, value in scope.get("headers") or ():
            if key.lower() == name:
                return bytes(value).decode("latin-1")
    except Exception:
        return None
    return None


class _HeldEnd:
    """An ASGI ``send`` that flushes before the final body message goes out.

    The start message is held too: with a ``content-length`` of 0 it would complete the
    response on its own.
    """

    __slots__ = ("_request", "_runner", "_send", "_start", "flushed")

    def __init__(self, send: ASGISend, runner: _Runner, request: _Request) -> None:
        self._send = send
        self._runner = runner
        self._request = request
        self._start: ASGIMessage | None = None
        self.flushed = False

    async def __call__(self, message: ASGIMessage) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            self._start = message
            return
        if kind == "http.response.body" and not message.get("more_body", False):
            await self._runner.aflush_now(self._request)
            self.flushed = True
        if self._start is not None:
            start, self._start = self._start, None
            await self._send(start)
        await self._send(message)

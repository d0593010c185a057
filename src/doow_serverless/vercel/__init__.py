"""Vercel: flush the tracker after every request, within the invocation's deadline.

A Vercel Python function exposes ``handler`` (a ``BaseHTTPRequestHandler`` subclass) or
``app`` (WSGI, such as Flask; ASGI, such as FastAPI or Starlette). ``with_vercel`` wraps
any of the three and gives back the same kind of object, so the runtime still finds it:

    tracker = DoowTracker()                        # module level: once per instance
    app = with_vercel(tracker)(Flask(__name__))    # or FastAPI(), or:

    @with_vercel                                   # or @with_vercel(tracker), @tracker.with_vercel
    class handler(BaseHTTPRequestHandler): ...

The response is produced first (a handler's ``do_*`` method returned, a WSGI iterable
was closed, an ASGI app sent its final body message and returned), then the request is
flushed: after the response through ``vercel.functions.wait_until`` where the runtime
waits for that work. ``_runner`` says where the flush runs and how the deadline is found;
``_handler_class``, ``_wsgi`` and ``_asgi`` wrap each kind of object.

Importing this module imports nothing from Vercel, Flask, Starlette, ``http.server``,
``inspect`` or ``asyncio``: what is needed is looked up on the first request.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar, overload

from .._client.tracker import DoowTracker
from .._core.constants import ENV_VERCEL_MAX_DURATION, LOGGER_NAME, Delivery
from .._core.env import EnvReader, parse_seconds
from .._core.errors import DoowConfigError
from .._core.platform import vercel_ipc_mode
from .._core.scope import Idempotency
from .._invocation.delivery import resolve_platform_delivery
from .._invocation.engine import InvocationEngine, default_tracker, is_coroutine_function
from .._invocation.policy import check_idempotency, resolve_flush_policy
from ._asgi import ASGIApp
from ._handler_class import wrap_handler_class
from ._runner import Runner, Wrapped
from ._wsgi import WSGIApp

__all__ = ["VercelDecorator", "default_tracker", "with_vercel"]

logger = logging.getLogger(LOGGER_NAME)

T = TypeVar("T")

ENV_MAX_DURATION = ENV_VERCEL_MAX_DURATION
# Used only when the runtime gives no deadline (runtimes before vercel-runtime's
# x-vercel-internal-deadline, `vercel dev` without it, or outside Vercel). 10 s is the
# smallest default limit Vercel has applied to a function (Hobby, before Fluid compute):
# assuming less time than there is can only shorten a flush, and what does not fit stays
# queued for the next request; assuming more could let the flush run into a kill.
DEFAULT_MAX_DURATION_S = 10.0


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
    delivery: Delivery | None = None,
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
    delivery: Delivery | None = None,
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

    ``delivery`` (else ``DOOW_TRACK_DELIVERY``, else ``"auto"``): ``"auto"`` flushes after
    the response where the runtime lets that work finish (``wait_until``), else before the
    response ends; ``"logs"`` sends nothing and writes each request's events as a log
    line, for the Log Drain forwarder to deliver.

    A handler class comes back as a subclass with its ``do_*`` methods wrapped; an app as
    a wrapper of the same interface (WSGI or ASGI) that forwards attribute access, so
    ``@app.route(...)`` still works on it. Without a tracker, :func:`default_tracker`.
    """
    tracker = target if isinstance(target, DoowTracker) else None
    decorator = _decorator(
        tracker,
        flush_timeout=flush_timeout,
        reserve=reserve,
        max_duration=max_duration,
        idempotency=idempotency,
        delivery=delivery,
    )
    return decorator if target is None or tracker is not None else decorator(target)


def _decorator(
    tracker: DoowTracker | None,
    *,
    flush_timeout: float | None,
    reserve: float | None,
    max_duration: float | None,
    idempotency: str,
    delivery: str | None,
) -> VercelDecorator:
    # Options are checked at decoration, while the function initialises, not per request.
    policy = resolve_flush_policy(flush_timeout, reserve)
    limit = resolve_max_duration(max_duration)
    mode = check_idempotency(idempotency)
    by_log = resolve_platform_delivery(delivery, "Vercel", ("logs",)) == "logs"

    def decorate(target: T, /) -> T:
        kind = _kind_of(target)
        chosen = tracker if tracker is not None else default_tracker()
        if not vercel_ipc_mode(os.environ) and not by_log:
            # Import httpx and build the client now, not in the first request. Not in the
            # runtime's IPC mode: there the platform sends the first request only once the
            # module is imported, while the first flush runs after the first response, so
            # building the client then keeps ~60-100 ms off the cold start's response.
            chosen.prepare()
        runner = Runner(InvocationEngine(chosen, policy, mode, by_log=by_log), limit)
        if kind == "handler":
            wrapped: Any = wrap_handler_class(target, runner)  # type: ignore[arg-type]
        elif kind == "asgi":
            inner = getattr(target, "asgi", None)
            wrapped = ASGIApp(inner if _is_callable_asgi_attribute(inner) else target, runner)
        else:
            wrapped = WSGIApp(target, runner)
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
    env = EnvReader(os.environ if environ is None else environ)
    seconds = env.parsed(ENV_MAX_DURATION, parse_seconds(allow_zero=False))
    for warning in env.warnings:
        logger.warning("doow-serverless: %s", warning)
    return DEFAULT_MAX_DURATION_S if seconds is None else seconds


# ----------------------------------------------------------------------------------
# What the wrapped object is, decided as the runtime decides it


def _kind_of(target: object) -> str:
    if isinstance(target, Wrapped) or getattr(target, "_doow_vercel", False):
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

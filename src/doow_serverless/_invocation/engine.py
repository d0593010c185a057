"""What every platform wrapper does around one invocation, whatever the platform.

A wrapper finds two things on its platform: the invocation's id and its remaining time.
Everything else is here: the events tracked during the call get ids derived from the
invocation id, the call is watched (should it still run near its deadline, what it
tracked is spooled before the kill, see ``_watch``), and after the call (returned or
raised) the tracker is flushed with a budget of ``min(flush_timeout, remaining -
reserve)``. The flush never raises, and never replaces the handler's result or exception.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Literal, NamedTuple, TypeVar

from .._client.tracker import DoowTracker, FlushResult
from .._core.constants import LOGGER_NAME
from .._core.errors import DoowConfigError
from .._core.wire import new_random_id
from .scope import invocation_scope
from .watch import unwatch, watch

if TYPE_CHECKING:
    from concurrent.futures import Executor

logger = logging.getLogger(LOGGER_NAME)

R = TypeVar("R")
Idempotency = Literal["invocation", "attempt"]

ENV_FLUSH_TIMEOUT = "DOOW_TRACK_FLUSH_TIMEOUT"  # milliseconds
ENV_FLUSH_RESERVE = "DOOW_TRACK_FLUSH_RESERVE"  # milliseconds

# A healthy ingest request from a function takes tens of milliseconds; 2 s leaves room for
# a retry or two, and bounds what a broken endpoint can add to every invocation.
DEFAULT_FLUSH_TIMEOUT_S = 2.0
# Kept back from the deadline for the runtime to post the response after the flush.
DEFAULT_FLUSH_RESERVE_S = 0.25


class FlushPolicy(NamedTuple):
    flush_timeout: float
    reserve: float

    def budget(self, remaining: float | None) -> float:
        """Seconds the post-invocation flush may take; 0 when no time is left."""
        if remaining is None:
            return self.flush_timeout
        return max(0.0, min(self.flush_timeout, remaining - self.reserve))


def resolve_flush_policy(
    flush_timeout: float | None,
    reserve: float | None,
    environ: Mapping[str, str] | None = None,
) -> FlushPolicy:
    """Arguments (seconds) beat the environment (milliseconds), which beats the defaults."""
    environ = os.environ if environ is None else environ
    return FlushPolicy(
        # A zero flush timeout would never send anything; a zero reserve is a choice.
        flush_timeout=_seconds(
            "flush_timeout",
            flush_timeout,
            environ,
            ENV_FLUSH_TIMEOUT,
            DEFAULT_FLUSH_TIMEOUT_S,
            allow_zero=False,
        ),
        reserve=_seconds(
            "reserve", reserve, environ, ENV_FLUSH_RESERVE, DEFAULT_FLUSH_RESERVE_S, allow_zero=True
        ),
    )


def _seconds(
    argument: str,
    value: float | None,
    environ: Mapping[str, str],
    variable: str,
    default: float,
    *,
    allow_zero: bool,
) -> float:
    bound = ">= 0" if allow_zero else "> 0"

    def minimum_ok(number: float) -> bool:
        return number >= 0 if allow_zero else number > 0

    if value is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum_ok(value):
            raise DoowConfigError(f"{argument} must be a number of seconds {bound}, got {value!r}")
        if not math.isfinite(value):
            raise DoowConfigError(f"{argument} must be finite, got {value!r}")
        return float(value)
    text = environ.get(variable, "").strip()
    if not text:
        return default
    try:
        millis = float(text)
    except ValueError:
        millis = -1.0
    if not (math.isfinite(millis) and minimum_ok(millis)):
        logger.warning(
            "doow-serverless: %s must be a number of milliseconds %s, got %r; using %s ms",
            variable,
            bound,
            text[:40],
            int(default * 1000),
        )
        return default
    return millis / 1000.0


_default_tracker: DoowTracker | None = None
_default_lock = threading.Lock()


def default_tracker() -> DoowTracker:
    """The tracker bare decorators (``@with_lambda``) flush: built on first use, then shared.

    It reads its settings from the ``DOOW_TRACK_*`` environment, like ``DoowTracker()``.
    """
    global _default_tracker  # noqa: PLW0603 - one per process, by design
    with _default_lock:
        if _default_tracker is None:
            _default_tracker = DoowTracker()
        return _default_tracker


# inspect.CO_COROUTINE. Importing inspect costs ~8 ms of cold start, for this one flag.
_CO_COROUTINE = 0x80


def is_coroutine_function(target: object) -> bool:
    """An ``async def`` function, a partial or method of one, or an object whose
    ``__call__`` is one (how the Vercel runtime tells ASGI from WSGI, too)."""
    for candidate in (target, getattr(type(target), "__call__", None)):  # noqa: B004
        function = candidate
        while isinstance(function, functools.partial):
            function = function.func
        function = getattr(function, "__func__", function)
        if getattr(function, "_is_coroutine_marker", None) is not None:  # markcoroutinefunction
            return True
        code = getattr(function, "__code__", None)
        if code is not None and code.co_flags & _CO_COROUTINE:
            return True
    return False


def scope_id(invocation_id: str | None, idempotency: Idempotency) -> str:
    """The prefix of derived event ids: the invocation's id, or a fresh one per attempt."""
    if idempotency == "invocation" and invocation_id:
        return invocation_id
    return "attempt:" + new_random_id()


def check_idempotency(value: str) -> Idempotency:
    if value not in ("invocation", "attempt"):
        raise DoowConfigError(f"idempotency must be 'invocation' or 'attempt', got {value!r}")
    return value  # type: ignore[return-value]


def flush_quietly(tracker: DoowTracker, budget: float) -> FlushResult | None:
    """Flush within ``budget``; any failure is logged, never raised into the caller."""
    try:
        return tracker.flush(budget)
    except Exception:
        logger.exception("doow-serverless: flush after the invocation failed")
        return None


def call_with_flush(
    tracker: DoowTracker,
    call: Callable[[], R],
    *,
    invocation_id: str | None,
    idempotency: Idempotency,
    remaining: Callable[[], float | None],
    policy: FlushPolicy,
    process_wide: bool = False,
) -> R:
    """Run ``call`` in the invocation's id scope, then flush before the deadline.

    ``process_wide`` is for platforms that run one invocation per process at a time: the
    scope then also reaches threads the handler starts.

    ``remaining`` is asked after the call, so the budget is what is really left.
    """
    with invocation_scope(scope_id(invocation_id, idempotency), process_wide=process_wide):
        guard = watch(tracker, _remaining_quietly(remaining), policy.reserve)
        try:
            return call()
        finally:
            unwatch(guard)
            flush_quietly(tracker, policy.budget(_remaining_quietly(remaining)))


def _remaining_quietly(remaining: Callable[[], float | None]) -> float | None:
    try:
        return remaining()
    except Exception:
        logger.exception("doow-serverless: could not read the invocation's remaining time")
        return None


async def acall_with_flush(
    tracker: DoowTracker,
    call: Callable[[], Awaitable[R]],
    *,
    invocation_id: str | None,
    idempotency: Idempotency,
    remaining: Callable[[], float | None],
    policy: FlushPolicy,
) -> R:
    """:func:`call_with_flush` for coroutines: the flush runs off the event loop.

    The flush blocks a worker thread, never the loop, so other requests or invocations on
    the same loop keep being served while this one's events are sent.
    """
    with invocation_scope(scope_id(invocation_id, idempotency)):
        guard = watch(tracker, _remaining_quietly(remaining), policy.reserve)
        try:
            return await call()
        finally:
            unwatch(guard)
            await flush_off_loop(tracker, policy.budget(_remaining_quietly(remaining)))


async def flush_off_loop(tracker: DoowTracker, budget: float) -> FlushResult | None:
    """Flush within ``budget`` in a worker thread, never blocking the loop; never raises.

    The threads are the SDK's own, not the loop's default executor: the application's
    ``to_thread`` work cannot hold a flush back. The budget counts from this call (time
    spent waiting for a free thread is taken out of it), and the wait for the thread is
    bounded too, so an invocation never outlasts its flush budget by more than a moment.
    """
    import asyncio  # noqa: PLC0415 - only async wrappers pay for it

    deadline = time.monotonic() + budget
    try:
        future = asyncio.get_running_loop().run_in_executor(
            _flush_executor(), _flush_before, tracker, deadline
        )
        done, _ = await asyncio.wait({future}, timeout=budget + _WAIT_MARGIN_S)
        if not done:
            logger.warning("doow-serverless: the flush did not finish within its budget")
            return None
        return future.result()
    except Exception:
        logger.exception("doow-serverless: flush after the invocation failed")
        return None


# What a thread may take beyond the budget to hand its result back to the loop.
_WAIT_MARGIN_S = 0.05
_FLUSH_THREADS = 8
_executor: Executor | None = None
_executor_lock = threading.Lock()


def _flush_executor() -> Executor:
    global _executor  # noqa: PLW0603 - one pool per process, built on first use
    with _executor_lock:
        if _executor is None:
            from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

            _executor = ThreadPoolExecutor(_FLUSH_THREADS, thread_name_prefix="doow-flush")
        return _executor


def _flush_before(tracker: DoowTracker, deadline: float) -> FlushResult | None:
    return flush_quietly(tracker, max(0.0, deadline - time.monotonic()))

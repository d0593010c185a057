"""The one invocation engine: what every platform wrapper does around an invocation.

A wrapper finds two things on its platform, the invocation's id and its remaining time,
and leaves the rest here:

- :meth:`InvocationEngine.begin` starts an :class:`Invocation`: a scope named after the
  invocation (events tracked in it get ids derived from the invocation id; see
  ``_core.scope``), its hard deadline, and the deadline watch (should the handler still
  run near its deadline, what it tracked is kept before the kill; see ``watch``);
- ``with invocation.entered():`` runs code in that scope (the handler, a WSGI body);
- :meth:`Invocation.finish` (or ``afinish`` off the event loop) ends it: the watch is
  disarmed and the tracker flushed with a budget of ``min(flush_timeout, remaining -
  reserve)``. The flush never raises, and never replaces the handler's result or
  exception. On a serverless platform, what it cannot send is written where it survives
  the process before it returns, however small the budget: the reserve pays for that.

:meth:`InvocationEngine.run` and :meth:`~InvocationEngine.arun` do all three around a
call; Vercel, whose flush follows the end of a response, uses the parts.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from .._client.sender import FlushResult
from .._client.tracker import DoowTracker
from .._core.constants import LOGGER_NAME
from .._core.scope import Idempotency, InvocationScope, current_scope, process_scope
from .policy import FlushPolicy, scope_id
from .watch import unwatch, watch

if TYPE_CHECKING:
    from concurrent.futures import Executor

logger = logging.getLogger(LOGGER_NAME)

R = TypeVar("R")


class Invocation:
    """One invocation in progress, from :meth:`InvocationEngine.begin` to ``finish``."""

    __slots__ = ("_engine", "_finished", "_guard", "scope")

    def __init__(self, engine: InvocationEngine, scope: InvocationScope) -> None:
        self._engine = engine
        self.scope = scope
        self._guard = watch(engine.tracker, self.remaining(), engine.policy.reserve)
        self._finished = False

    def remaining(self) -> float | None:
        """Seconds to the hard deadline (None: unknown); negative once it passed."""
        deadline = self.scope.deadline
        return None if deadline is None else deadline - time.monotonic()

    @contextmanager
    def entered(self) -> Iterator[InvocationScope]:
        """Run a stretch of the invocation's code in its scope."""
        token = current_scope.set(self.scope)
        process_wide = self._engine.process_wide
        if process_wide:
            process_scope.current = self.scope
        try:
            yield self.scope
        finally:
            current_scope.reset(token)
            if process_wide:
                process_scope.current = None

    def budget(self) -> float:
        return self._engine.policy.budget(self.remaining())

    def _closing(self) -> bool:
        """Mark the invocation finished; False when it was already (a flush runs once)."""
        if self._finished:
            return False
        self._finished = True
        unwatch(self._guard)
        return True

    def keep(self) -> None:
        """Make the invocation's events durable now (lines, spool), sending nothing: for
        wrappers that send after the response, so no kill in between loses them."""
        try:
            with self.entered():
                self._engine.tracker.keep()
        except Exception:
            logger.exception("doow-serverless: could not keep the invocation's events")

    def release(self) -> None:
        """End the invocation without flushing: disarm the watch, keep its events (lines,
        spool). Whoever sends later (a background thread) sends them."""
        if self._closing():
            self.keep()

    def end_by_log(self) -> None:
        """Logs-only delivery: disarm the watch, write every queued event as a log line,
        and send nothing (a forwarder delivers from the platform's logs)."""
        if not self._closing():
            return
        try:
            with self.entered():
                self._engine.tracker.deliver_by_log()
        except Exception:
            logger.exception("doow-serverless: could not write the invocation's events")

    def finish(self) -> FlushResult | None:
        """Disarm the watch and flush within the budget, in this thread; never raises."""
        if not self._closing():
            return None
        budget = self.budget()
        with self.entered():
            result = flush_quietly(self._engine.tracker, budget)
        self._engine.check_reserve(result, budget)
        return result

    async def afinish(self) -> FlushResult | None:
        """:meth:`finish` for coroutines: the flush runs in a thread of the SDK's own, so
        the event loop keeps serving other requests or invocations meanwhile."""
        if not self._closing():
            return None
        # Kept here, on the loop, before the flush moves to a thread: a kill while the
        # thread is being found would otherwise find the events in memory only.
        self.keep()
        budget = self.budget()
        result = await flush_off_loop(self._engine.tracker, budget, self.scope)
        self._engine.check_reserve(result, budget)
        return result


class InvocationEngine:
    """What one wrapped handler shares across its invocations."""

    __slots__ = ("_warned", "idempotency", "policy", "process_wide", "tracker")

    def __init__(
        self,
        tracker: DoowTracker,
        policy: FlushPolicy,
        idempotency: Idempotency,
        *,
        process_wide: bool = False,
    ) -> None:
        self.tracker = tracker
        self.policy = policy
        self.idempotency = idempotency
        # The platform runs one invocation per process at a time (Lambda): the scope then
        # also reaches threads the handler starts, which do not inherit ContextVars.
        self.process_wide = process_wide
        self._warned = False

    def check_reserve(self, result: FlushResult | None, budget: float) -> None:
        """Say once when writing what could not be sent took more than half the reserve
        (the reserve pays for it: a kill at the deadline would cut it short)."""
        if result is None or self._warned:
            return
        beyond = result.elapsed - budget
        reserve = self.policy.reserve
        if beyond > reserve / 2:
            self._warned = True
            logger.warning(
                "doow-serverless: keeping what could not be sent took %.0f ms beyond the "
                "flush budget, more than half the reserve (%.0f ms); raise the reserve "
                "(reserve=, DOOW_TRACK_FLUSH_RESERVE) or flush during long handlers",
                beyond * 1000,
                reserve * 1000,
            )

    def begin(self, invocation_id: str | None, remaining: float | None) -> Invocation:
        """An invocation with ``remaining`` seconds to its hard deadline (None: unknown)."""
        deadline = None if remaining is None else time.monotonic() + remaining
        return Invocation(
            self, InvocationScope(scope_id(invocation_id, self.idempotency), deadline)
        )

    def run(
        self,
        call: Callable[[], R],
        *,
        invocation_id: str | None,
        remaining: Callable[[], float | None],
        end: Callable[[Invocation], object] | None = None,
    ) -> R:
        """Run ``call`` as one invocation, then end it: ``end`` (the invocation), by default
        a flush before its deadline."""
        invocation = self.begin(invocation_id, remaining_quietly(remaining))
        try:
            with invocation.entered():
                return call()
        finally:
            if end is None:
                invocation.finish()
            else:
                _end_quietly(end, invocation)

    async def arun(
        self,
        call: Callable[[], Awaitable[R]],
        *,
        invocation_id: str | None,
        remaining: Callable[[], float | None],
    ) -> R:
        """:meth:`run` for coroutines; the flush runs off the event loop."""
        invocation = self.begin(invocation_id, remaining_quietly(remaining))
        try:
            with invocation.entered():
                return await call()
        finally:
            await invocation.afinish()


def _end_quietly(end: Callable[[Invocation], object], invocation: Invocation) -> None:
    try:
        end(invocation)
    except Exception:
        logger.exception("doow-serverless: ending the invocation failed")
        invocation.finish()


def remaining_quietly(remaining: Callable[[], float | None]) -> float | None:
    try:
        return remaining()
    except Exception:
        logger.exception("doow-serverless: could not read the invocation's remaining time")
        return None


def flush_quietly(tracker: DoowTracker, budget: float) -> FlushResult | None:
    """Flush within ``budget``; any failure is logged, never raised into the caller."""
    try:
        return tracker.flush(budget)
    except Exception:
        logger.exception("doow-serverless: flush after the invocation failed")
        return None


async def flush_off_loop(
    tracker: DoowTracker, budget: float, scope: InvocationScope | None = None
) -> FlushResult | None:
    """Flush within ``budget`` (in ``scope``) in a worker thread, never blocking the loop;
    never raises.

    The threads are the SDK's own, not the loop's default executor: the application's
    ``to_thread`` work cannot hold a flush back. The budget counts from this call (time
    spent waiting for a free thread is taken out of it), and the wait for the thread is
    bounded too, so an invocation never outlasts its flush budget by more than a moment.
    """
    import asyncio  # noqa: PLC0415 - only async wrappers pay for it

    deadline = time.monotonic() + budget
    try:
        future = asyncio.get_running_loop().run_in_executor(
            _flush_executor(), _flush_before, tracker, deadline, scope
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


def _flush_before(
    tracker: DoowTracker, deadline: float, scope: InvocationScope | None
) -> FlushResult | None:
    token = current_scope.set(scope)
    try:
        return flush_quietly(tracker, max(0.0, deadline - time.monotonic()))
    finally:
        current_scope.reset(token)


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

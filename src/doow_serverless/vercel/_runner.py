"""What every wrapped Vercel request shares: its invocation, and where its flush runs.

Per request three things are found here and the rest is the invocation engine's:

- the id: the ``x-vercel-id`` request header, from which event ids are derived;
- the deadline: ``vercel_runtime.get_deadline()`` (what ``vercel.functions.get_deadline()``
  reads), else ``max_duration`` seconds from the request's start;
- where the flush runs once the response is produced. Where Vercel's runtime reports the
  invocation's end only after the work handed to ``vercel.functions.wait_until`` (its IPC
  mode), the flush is handed to it and runs after the response, off any event loop.
  Where work after the response could be frozen (the runtime's older Lambda mode), the
  end of the response is held back until the flush is done. Anywhere else it runs right
  after the response.

Nothing from Vercel is imported before the first request.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .._core.constants import LOGGER_NAME
from .._core.platform import frozen_after_response
from .._invocation.engine import Invocation, InvocationEngine

logger = logging.getLogger(LOGGER_NAME)

VERCEL_ID_HEADER = "x-vercel-id"


class Runner:
    """The engine of one wrapped handler or app, and its fallback limit."""

    __slots__ = ("engine", "max_duration")

    def __init__(self, engine: InvocationEngine, max_duration: float) -> None:
        self.engine = engine
        self.max_duration = max_duration

    def begin(self, vercel_id: object) -> Invocation:
        request_id = vercel_id if isinstance(vercel_id, str) and vercel_id else None
        left = runtime_time_left()
        return self.engine.begin(request_id, self.max_duration if left is None else left)

    def finish(self, invocation: Invocation) -> None:
        """After the response: hand the flush to wait_until, or else flush here. Either
        way the events are kept first (their lines, the spool): the instance may be killed
        before the work handed to wait_until begins."""
        invocation.keep()
        if not _handed_to_wait_until(invocation):
            invocation.finish()

    async def afinish(self, invocation: Invocation) -> None:
        invocation.keep()
        if not _handed_to_wait_until(invocation):
            await invocation.afinish()


def must_hold_response() -> bool:
    """Whether the response must wait for the flush (the runtime's older Lambda mode)."""
    return frozen_after_response(os.environ)


async def _flush_after_response(invocation: Invocation) -> None:
    # The budget is taken when the runtime runs this, after the response, not before.
    await invocation.afinish()


def _handed_to_wait_until(invocation: Invocation) -> bool:
    """Give the flush to ``vercel.functions.wait_until``; False where it would not run."""
    wait_until = _wait_until()
    if wait_until is None:
        return False
    work = _flush_after_response(invocation)
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
    if must_hold_response():
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


def runtime_time_left() -> float | None:
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


class Wrapped:
    """Base of the app wrappers: forwards attribute access to the app it wraps."""

    __slots__ = ("_doow_app", "_doow_runner")
    _doow_vercel = True
    _doow_app: Any

    def __init__(self, app: Any, runner: Runner) -> None:
        self._doow_app = app
        self._doow_runner = runner

    def __getattr__(self, name: str) -> Any:
        # Never "asgi": the runtime would call that instead of this wrapper.
        if name == "asgi" or (name.startswith("__") and name.endswith("__")):
            raise AttributeError(name)
        return getattr(self._doow_app, name)

    def __repr__(self) -> str:
        return f"with_vercel({self._doow_app!r})"

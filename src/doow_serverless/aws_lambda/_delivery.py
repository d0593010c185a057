"""Which way a wrapped Lambda handler's events go, per process: the choice made once.

- ``sync`` (classic Lambda's ``auto``): the flush runs before the response goes back.
- ``after-response``: an internal extension flushes after the response (``_after_response``).
- ``background`` (``auto`` on Managed Instances): kept before the response, sent by a
  thread of the process (``_background``).
- ``logs``: written as log lines only; a forwarder delivers them from CloudWatch Logs.

A choice that cannot work where the process runs (after-response on Managed Instances,
where an extension may not register for ``INVOKE``; background on classic Lambda, which
freezes the process after each response) falls back with one warning.

The modules of after-response and background delivery are imported only where they are
chosen: the extension's HTTP client and the signal handling are not part of every init.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple, cast

from .._client.tracker import DoowTracker
from .._core.constants import LOGGER_NAME, Delivery
from .._core.platform import lambda_managed_instances
from .._invocation.engine import Invocation

if TYPE_CHECKING:
    from ._after_response import AfterResponse
    from ._background import Background

logger = logging.getLogger(LOGGER_NAME)

# How an invocation ends, given its request id; None: the synchronous flush.
Ending = Callable[[Invocation, "str | None"], None]


class Chosen(NamedTuple):
    """The delivery a process ended up with (after any fallback), and how it ends an
    invocation."""

    delivery: Delivery  # sync, after-response, background or logs
    ending: Ending | None

    @property
    def pool_at_init(self) -> bool:
        """Whether the HTTP connection pool is built during init (see docs/lambda.md).

        ``sync``: the first response waits for a flush anyway, and init runs before the
        invocation's timeout starts. ``background``: Managed Instances initialise an
        environment before it takes traffic, so init is no one's wait, and the sender's
        first flush, which a SIGTERM may follow at once, is not slowed by building it.
        ``after-response``: the first flush builds it, after the first response, which
        waits for init. ``logs``: nothing is sent.
        """
        return self.delivery in ("sync", "background")


_lock = threading.Lock()
_MISSING = object()
_extension: object = _MISSING  # AfterResponse, or None once registration failed
_backgrounds: dict[int, Background] = {}
_warned: set[str] = set()  # each fallback is announced once per process


def _warn_once(message: str) -> None:
    with _lock:
        if message in _warned:
            return
        _warned.add(message)
    logger.warning(message)


def ending_for(
    delivery: Delivery, tracker: DoowTracker, environ: Mapping[str, str] | None = None
) -> Chosen:
    environ = os.environ if environ is None else environ
    managed = lambda_managed_instances(environ)
    if delivery == "auto":
        delivery = "background" if managed else "sync"
    if delivery == "logs":
        return Chosen("logs", None)  # the engine ends each invocation by its log line
    if delivery == "after-response" and managed:
        _warn_once(
            "doow-serverless: delivery after the response needs an extension registered for "
            "INVOKE, which Lambda Managed Instances refuse; delivering in the background"
        )
        delivery = "background"
    if delivery == "background":
        if not managed:
            _warn_once(
                "doow-serverless: background delivery needs an environment that is never "
                "frozen (Lambda Managed Instances); flushing before each response instead"
            )
            return Chosen("sync", None)
        background = _background(tracker)
        return Chosen(
            "background", lambda invocation, _request_id: background.hand_over(invocation)
        )
    if delivery == "after-response":
        extension = _registered_extension(environ)
        if extension is None:
            return Chosen("sync", None)
        return Chosen(
            "after-response",
            lambda invocation, request_id: _after(extension, invocation, request_id),
        )
    return Chosen("sync", None)


def _after(extension: AfterResponse, invocation: Invocation, request_id: str | None) -> None:
    if request_id is None:  # not called by Lambda: no event will come for it
        invocation.finish()
    else:
        extension.hand_over(request_id, invocation)


def _registered_extension(environ: Mapping[str, str]) -> AfterResponse | None:
    """One extension per process, registered at the first decoration (during init)."""
    global _extension  # noqa: PLW0603 - one per process, by design
    with _lock:
        if _extension is _MISSING:
            from ._after_response import AfterResponse  # noqa: PLC0415 - only where chosen

            _extension = AfterResponse.register(environ)
        return None if _extension is None else cast("AfterResponse", _extension)


def _background(tracker: DoowTracker) -> Background:
    with _lock:
        background = _backgrounds.get(id(tracker))
        if background is None:
            from ._background import Background  # noqa: PLC0415 - only where chosen

            background = _backgrounds[id(tracker)] = Background(tracker)
        return background

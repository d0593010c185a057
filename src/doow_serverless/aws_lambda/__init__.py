"""AWS Lambda: flush the tracker after every invocation, before the invocation's deadline.

    tracker = DoowTracker()            # module level: built once per execution environment

    @with_lambda(tracker)              # or bare @with_lambda, or @tracker.with_lambda
    def handler(event, context): ...

This module only finds the two things Lambda provides, ``context.aws_request_id`` and
``context.get_remaining_time_in_millis()``; the flush itself is ``_invocation``'s, shared
by every platform. Importing it costs nothing Lambda-specific: the context is duck-typed
(type it with Powertools' ``LambdaContext`` in your handler), and no AWS library is imported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, Protocol, TypeVar, overload

from .._client.tracker import DoowTracker
from .._core.constants import Delivery
from .._core.errors import DoowConfigError
from .._core.scope import Idempotency
from .._invocation.delivery import resolve_delivery
from .._invocation.engine import (
    Invocation,
    InvocationEngine,
    default_tracker,
    is_coroutine_function,
)
from .._invocation.policy import check_idempotency, resolve_flush_policy
from ._delivery import Ending, ending_for

__all__ = ["LambdaDecorator", "default_tracker", "with_lambda"]

P = ParamSpec("P")
R = TypeVar("R")


class LambdaDecorator(Protocol):
    """What ``with_lambda(...)`` returns: a decorator that keeps the handler's signature."""

    def __call__(self, handler: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def with_lambda(handler: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def with_lambda(
    tracker: DoowTracker | None = None,
    /,
    *,
    flush_timeout: float | None = None,
    reserve: float | None = None,
    idempotency: Idempotency = "invocation",
    delivery: Delivery | None = None,
) -> LambdaDecorator: ...


def with_lambda(
    target: Any = None,
    /,
    *,
    flush_timeout: float | None = None,
    reserve: float | None = None,
    idempotency: Idempotency = "invocation",
    delivery: Delivery | None = None,
) -> Any:
    """Wrap a Lambda handler so the tracker is flushed after each invocation.

    After the handler returns or raises, the tracker is flushed for at most
    ``min(flush_timeout, remaining time - reserve)`` seconds; events that do not fit stay
    queued and go first at the next warm invocation. The handler's result or exception is
    returned or raised unchanged, whatever the flush does.

    ``flush_timeout`` and ``reserve`` are seconds; unset, they come from
    ``DOOW_TRACK_FLUSH_TIMEOUT`` / ``DOOW_TRACK_FLUSH_RESERVE`` (milliseconds), else 2 s and
    0.25 s. ``idempotency="invocation"`` derives event ids from the request id, so a
    retried invocation is counted once; ``"attempt"`` gives every attempt fresh ids.

    ``delivery`` (else ``DOOW_TRACK_DELIVERY``, else ``"auto"``): ``"sync"`` flushes before
    the response (classic Lambda's default); ``"after-response"`` keeps the events, returns
    the result at once and flushes in an internal extension's turn, before Lambda freezes
    the environment; ``"background"`` (the default on Lambda Managed Instances) sends from a
    thread of the process; ``"logs"`` writes log lines only, for a forwarder to deliver.

    Without a tracker, the shared :func:`default_tracker` is used.
    """
    if target is None or isinstance(target, DoowTracker):
        return _decorator(target, flush_timeout, reserve, idempotency, delivery)
    if callable(target):
        return _decorator(None, flush_timeout, reserve, idempotency, delivery)(target)
    raise DoowConfigError(
        f"with_lambda expects a DoowTracker or a handler function, got {type(target).__name__}"
    )


def _decorator(
    tracker: DoowTracker | None,
    flush_timeout: float | None,
    reserve: float | None,
    idempotency: str,
    delivery: str | None,
) -> LambdaDecorator:
    # Options are checked when with_lambda(...) is called, in the init phase, not per invocation.
    policy = resolve_flush_policy(flush_timeout, reserve)
    mode = check_idempotency(idempotency)
    chosen_delivery = resolve_delivery(delivery)

    def decorate(handler: Callable[P, R], /) -> Callable[P, R]:
        _check_handler(handler)
        chosen = tracker if tracker is not None else default_tracker()
        # Registering an extension, where one is needed, is part of init.
        delivery = ending_for(chosen_delivery, chosen)
        # The connection pool is built now where the first response waits for a flush
        # (sync) or init waits for no one (background, on Managed Instances); after the
        # first response otherwise (after-response); never in logs-only delivery. Either
        # way, what dead processes left in the spool is adopted now.
        chosen.prepare(connect=delivery.pool_at_init)
        # Lambda runs one invocation per process at a time: the scope is process-wide.
        engine = InvocationEngine(
            chosen, policy, mode, process_wide=True, by_log=delivery.delivery == "logs"
        )
        return _wrap(handler, engine, delivery.ending)

    return decorate


def _wrap(
    handler: Callable[P, R], engine: InvocationEngine, ending: Ending | None
) -> Callable[P, R]:
    @functools.wraps(handler)
    def lambda_handler(*args: P.args, **kwargs: P.kwargs) -> R:
        context = args[1] if len(args) > 1 else kwargs.get("context")
        request_id = _request_id(context)
        return engine.run(
            functools.partial(handler, *args, **kwargs),
            invocation_id=request_id,
            remaining=functools.partial(_remaining_seconds, context),
            end=None if ending is None else functools.partial(_end, ending, request_id),
        )

    return lambda_handler


def _end(ending: Ending, request_id: str | None, invocation: Invocation) -> None:
    ending(invocation, request_id)


def _check_handler(handler: object) -> None:
    if not callable(handler):
        raise DoowConfigError(
            f"with_lambda must decorate a handler function, got {type(handler).__name__}"
        )
    if is_coroutine_function(handler):
        name = getattr(handler, "__qualname__", type(handler).__name__)
        raise DoowConfigError(
            f"with_lambda cannot wrap the coroutine function {name}: the Lambda Python "
            "runtime calls handlers synchronously and would return an un-awaited coroutine. "
            "Define the handler with 'def' and run async code inside it with asyncio.run()."
        )


def _request_id(context: object) -> str | None:
    request_id = getattr(context, "aws_request_id", None)
    return request_id if isinstance(request_id, str) and request_id else None


def _remaining_seconds(context: object) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    millis = remaining()
    if isinstance(millis, bool) or not isinstance(millis, (int, float)):
        raise TypeError(f"get_remaining_time_in_millis() returned {type(millis).__name__}")
    return millis / 1000.0

"""Azure Functions: flush the tracker after every invocation, before the function's timeout.

    import azure.functions as func

    tracker = DoowTracker()            # module level: built once per worker process
    app = func.FunctionApp()

    @app.route(route="hello")
    @with_azure_function(tracker)      # below the app's decorators; or bare, or
    def hello(req: func.HttpRequest) -> func.HttpResponse: ...   # @tracker.with_azure_function

The same decorator serves the v1 model (``main(req, context)`` with ``function.json``), and
``def`` as well as ``async def`` functions. Azure does not tell a function how much time it
has left, so the budget is derived here: the function timeout is the app setting
``AzureFunctionsJobHost__functionTimeout``, else ``functionTimeout`` in the app's
``host.json`` (read once per process), else the plan's default (5 minutes on Consumption,
30 on the others); an HTTP-triggered invocation never gets more than the 230 s the front end
waits. It is measured from the moment the worker calls the function. The flush itself is
``_invocation``'s, shared by every platform.

What the worker binds is kept exactly: the wrapper has the function's name, parameters,
annotations and return annotation, so indexing finds the same bindings. When the function
does not take ``context``, the wrapper asks the worker for it (to read ``invocation_id``)
and calls the function without it. Importing this module imports no Azure library.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple, ParamSpec, Protocol, TypeVar, overload

from .._client.tracker import DoowTracker
from .._core.constants import LOGGER_NAME, Delivery
from .._core.errors import DoowConfigError
from .._core.scope import Idempotency
from .._invocation.delivery import resolve_platform_delivery
from .._invocation.engine import InvocationEngine, default_tracker
from .._invocation.policy import check_idempotency, resolve_flush_policy
from ._timeout import FunctionTimeout, resolve_function_timeout

__all__ = [
    "AzureFunctionDecorator",
    "FunctionTimeout",
    "default_tracker",
    "resolve_function_timeout",
    "with_azure_function",
]

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger(LOGGER_NAME)

# Azure's front end drops an HTTP request after 230 s, whatever the function timeout.
HTTP_RESPONSE_LIMIT_S = 230.0

_monotonic = time.monotonic


class AzureFunctionDecorator(Protocol):
    """What ``with_azure_function(...)`` returns: a decorator that keeps the signature."""

    def __call__(self, function: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def with_azure_function(function: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def with_azure_function(
    tracker: DoowTracker | None = None,
    /,
    *,
    flush_timeout: float | None = None,
    reserve: float | None = None,
    idempotency: Idempotency = "invocation",
    delivery: Delivery | None = None,
) -> AzureFunctionDecorator: ...


def with_azure_function(
    target: Any = None,
    /,
    *,
    flush_timeout: float | None = None,
    reserve: float | None = None,
    idempotency: Idempotency = "invocation",
    delivery: Delivery | None = None,
) -> Any:
    """Wrap an Azure function so the tracker is flushed after each invocation.

    After the function returns or raises, the tracker is flushed for at most
    ``min(flush_timeout, time left before the function timeout - reserve)`` seconds; events
    that do not fit stay queued and go first at the next invocation in this worker. The
    function's result or exception is returned or raised unchanged, whatever the flush does.
    A ``def`` function is flushed on the worker thread that ran it; an ``async def`` one in a
    helper thread, so the worker's event loop keeps serving other invocations.

    ``flush_timeout`` and ``reserve`` are seconds; unset, they come from
    ``DOOW_TRACK_FLUSH_TIMEOUT`` / ``DOOW_TRACK_FLUSH_RESERVE`` (milliseconds), else 2 s and
    0.25 s. ``idempotency="invocation"`` derives event ids from ``context.invocation_id``;
    ``"attempt"`` gives every call fresh ids.

    ``delivery`` (else ``DOOW_TRACK_DELIVERY``, else ``"auto"``): ``"auto"`` flushes as
    above; ``"logs"`` sends nothing and writes each invocation's events as a log line, for
    the Event Hubs forwarder to deliver.

    Apply it below ``@app.route`` and the other app decorators. Without a tracker, the
    shared :func:`default_tracker` is used.
    """
    if target is None or isinstance(target, DoowTracker):
        return _decorator(target, flush_timeout, reserve, idempotency, delivery)
    if _is_registered_function(target):
        raise DoowConfigError(_ORDER_MESSAGE)
    if callable(target):
        return _decorator(None, flush_timeout, reserve, idempotency, delivery)(target)
    raise DoowConfigError(
        f"with_azure_function expects a DoowTracker or a function, got {type(target).__name__}"
    )


_ORDER_MESSAGE = (
    "with_azure_function was applied above an app decorator (@app.route, @app.timer_trigger, "
    "...), which has already registered the unwrapped function: put @with_azure_function "
    "directly above the 'def' line, below the app's decorators"
)


def _decorator(
    tracker: DoowTracker | None,
    flush_timeout: float | None,
    reserve: float | None,
    idempotency: str,
    delivery: str | None,
) -> AzureFunctionDecorator:
    # Options are checked when the function app is indexed, not per invocation.
    policy = resolve_flush_policy(flush_timeout, reserve)
    mode = check_idempotency(idempotency)
    by_log = resolve_platform_delivery(delivery, "Azure Functions", ("sync", "logs")) == "logs"

    def decorate(function: Callable[P, R], /) -> Callable[P, R]:
        if _is_registered_function(function):
            raise DoowConfigError(_ORDER_MESSAGE)
        if not callable(function):
            raise DoowConfigError(
                f"with_azure_function must decorate a function, got {type(function).__name__}"
            )
        chosen = tracker if tracker is not None else default_tracker()
        if not by_log:
            # Build the connection pool while the worker indexes the app, not in the first
            # invocation.
            chosen.prepare()
        timeout = resolve_function_timeout(source_file=_source_file(function))
        engine = InvocationEngine(chosen, policy, mode, by_log=by_log)
        return _wrap(function, engine, timeout.seconds)

    return decorate


def _is_registered_function(target: object) -> bool:
    """An azure-functions ``FunctionBuilder``: what the app decorators return."""
    kind = type(target)
    return kind.__name__ in ("FunctionBuilder", "Function") and kind.__module__.startswith(
        "azure.functions"
    )


# -- the wrapper ------------------------------------------------------------------------


class _Invocation(NamedTuple):
    """What a wrapper needs at each call; built once, when the function is decorated."""

    function: Callable[..., Any]
    engine: InvocationEngine
    timeout: float | None  # the function timeout in seconds; None: unbounded
    asks_context: bool  # the function does not take ``context``: the wrapper asks for it
    context_index: int | None  # where a declared ``context`` sits among positional arguments

    def split(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
        """The invocation context, removed from ``kwargs`` when the function did not ask."""
        if self.asks_context:
            return kwargs.pop("context", None)
        if "context" in kwargs:
            return kwargs["context"]
        index = self.context_index
        return args[index] if index is not None and index < len(args) else None

    def remaining(
        self, started: float, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> float | None:
        limit = self.timeout
        if _is_http_invocation(args, kwargs):
            limit = HTTP_RESPONSE_LIMIT_S if limit is None else min(limit, HTTP_RESPONSE_LIMIT_S)
        if limit is None:
            return None
        return limit - (_monotonic() - started)


def _run(call: _Invocation, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    started = _monotonic()
    context = call.split(args, kwargs)
    return call.engine.run(
        functools.partial(call.function, *args, **kwargs),
        invocation_id=_invocation_id(context),
        remaining=functools.partial(call.remaining, started, args, kwargs),
    )


async def _arun(call: _Invocation, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    started = _monotonic()
    context = call.split(args, kwargs)
    return await call.engine.arun(
        functools.partial(call.function, *args, **kwargs),
        invocation_id=_invocation_id(context),
        remaining=functools.partial(call.remaining, started, args, kwargs),
    )


def _wrap(
    function: Callable[P, R], engine: InvocationEngine, timeout: float | None
) -> Callable[P, R]:
    # The worker has imported inspect long before it indexes the app: this costs nothing
    # there, and keeps ``import doow_serverless.azure_functions`` cheap everywhere else.
    import inspect  # noqa: PLC0415

    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())
    names = [parameter.name for parameter in parameters]
    asks_context = "context" not in names
    context_index = None
    if not asks_context:
        declared = signature.parameters["context"]
        if declared.kind in (declared.POSITIONAL_ONLY, declared.POSITIONAL_OR_KEYWORD):
            context_index = names.index("context")
    else:
        # The worker passes ``context`` to a function whose signature names it; keyword-only
        # with a default, so direct calls (unit tests) may leave it out.
        extra = inspect.Parameter("context", inspect.Parameter.KEYWORD_ONLY, default=None)
        at = len(parameters)
        if parameters and parameters[-1].kind is inspect.Parameter.VAR_KEYWORD:
            at -= 1
        parameters.insert(at, extra)
        signature = signature.replace(parameters=parameters)
    call = _Invocation(function, engine, timeout, asks_context, context_index)

    wrapper: Callable[..., Any]
    if inspect.iscoroutinefunction(function):

        async def with_azure_function(*args: Any, **kwargs: Any) -> Any:
            return await _arun(call, args, kwargs)

        wrapper = with_azure_function
    else:

        def with_azure_function(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            return _run(call, args, kwargs)

        wrapper = with_azure_function
    functools.update_wrapper(wrapper, function)
    # The worker binds arguments by the names in this signature (it reads __signature__
    # before following __wrapped__), and its type hints from __annotations__ (shared with
    # the function by update_wrapper).
    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    _locate_in(wrapper, function)
    return wrapper  # type: ignore[return-value]


def _locate_in(wrapper: Callable[..., Any], function: object) -> None:
    """Give the wrapper's code the file and first line of the function it wraps.

    The v2 worker takes ``context.function_directory`` from ``inspect.getfile()`` of the
    registered function, which reads the code object and does not follow ``__wrapped__``:
    without this, a wrapped function would report this package's directory. The wrapper's
    one-line body then shows in tracebacks as the line just below the function's first
    decorator (``@with_azure_function`` itself, when it comes right after ``@app.route``).
    """
    code = getattr(_unwrapped(function), "__code__", None)
    if code is None:
        return
    try:
        wrapper.__code__ = wrapper.__code__.replace(
            co_filename=code.co_filename, co_firstlineno=code.co_firstlineno
        )
    except (AttributeError, TypeError, ValueError):
        logger.debug("doow-serverless: kept the wrapper's own code location", exc_info=True)


def _unwrapped(function: object) -> object:
    while isinstance(function, functools.partial):
        function = function.func
    return getattr(function, "__func__", function)


def _source_file(function: object) -> str | None:
    code = getattr(_unwrapped(function), "__code__", None)
    filename = getattr(code, "co_filename", None)
    return filename if isinstance(filename, str) and os.path.isfile(filename) else None


def _invocation_id(context: object) -> str | None:
    invocation_id = getattr(context, "invocation_id", None)
    return invocation_id if isinstance(invocation_id, str) and invocation_id else None


def _is_http_invocation(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether an argument is an HTTP request: the worker imported its class already."""
    kinds: list[type] = []
    azure = sys.modules.get("azure.functions")
    if azure is not None and isinstance(getattr(azure, "HttpRequest", None), type):
        kinds.append(azure.HttpRequest)
    # HTTP streaming (azurefunctions-extensions-http-fastapi) passes a Starlette request.
    starlette = sys.modules.get("starlette.requests")
    if starlette is not None and isinstance(getattr(starlette, "Request", None), type):
        kinds.append(starlette.Request)
    if not kinds:
        return False
    classes = tuple(kinds)
    return any(isinstance(value, classes) for value in (*args, *kwargs.values()))

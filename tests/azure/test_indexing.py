"""Indexing: a wrapped function gives the worker exactly the bindings of the unwrapped one.

In-process with the ``azure-functions`` this Python installs (1.x on 3.11), and through the
real library worker on 3.13 (``azure-functions`` 2.x), which indexes the app, validates each
function's parameters against its bindings and loads it.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import azure.functions as func
import pytest

from doow_serverless import DoowTracker, with_azure_function
from doow_serverless_dev.azure_local import AppLoadError

from .conftest import APPS, AZURE_ENVIRON, MakeApp

F = TypeVar("F", bound=Callable[..., Any])
Wrap = Callable[[Callable[..., Any]], Callable[..., Any]]


@pytest.fixture
def tracker() -> Iterator[DoowTracker]:
    tracker = DoowTracker("dk_indexing_0000", endpoint="http://127.0.0.1:9", environ=AZURE_ENVIRON)
    yield tracker
    tracker.shutdown(timeout=0.1)


def build_app(wrap: Wrap) -> tuple[func.FunctionApp, dict[str, Callable[..., Any]]]:
    """Route, timer and queue triggers, sync and async, with and without context."""
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    functions: dict[str, Callable[..., Any]] = {}

    def keep(function: F) -> F:
        functions[function.__name__] = function
        return function

    @app.route(route="route_sync", methods=["GET"])
    @keep
    @wrap
    def route_sync(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("ok")

    @app.route(route="route_async", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
    @keep
    @wrap
    async def route_async(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("ok")

    @app.function_name("named_route")
    @app.route(route="route_context", trigger_arg_name="request")
    @keep
    @wrap
    def route_context(request: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return func.HttpResponse("ok")

    @app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer", run_on_startup=False)
    @keep
    @wrap
    def timer_sync(timer: func.TimerRequest) -> None:
        pass

    @app.timer_trigger(schedule="0 0 * * * *", arg_name="timer")
    @keep
    @wrap
    async def timer_async(timer: func.TimerRequest, context: func.Context) -> None:
        pass

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    @keep
    @wrap
    def queue_sync(msg: func.QueueMessage) -> None:
        pass

    @app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
    @app.queue_output(arg_name="out", queue_name="done", connection="AzureWebJobsStorage")
    @keep
    @wrap
    async def queue_async(msg: func.QueueMessage, out: func.Out[str]) -> None:
        pass

    return app, functions


def identity(function: F) -> F:
    return function


def indexed(app: func.FunctionApp) -> dict[str, Any]:
    return {
        str(function.get_function_name()): {
            "raw_bindings": function.get_raw_bindings(),
            "function_json": function.get_function_json(),
            "is_http": function.is_http_function(),
            "trigger": function.get_trigger().get_dict_repr(),  # type: ignore[union-attr]
        }
        for function in app.get_functions()
    }


def test_get_functions_gives_the_same_bindings_wrapped_or_not(tracker: DoowTracker) -> None:
    plain_app, plain = build_app(identity)
    wrapped_app, wrapped = build_app(with_azure_function(tracker))

    assert indexed(wrapped_app) == indexed(plain_app)
    assert len(indexed(build_app(identity)[0])) == 7
    for name, function in wrapped.items():
        original = plain[name]
        assert function is not original
        assert function.__name__ == original.__name__
        assert typing.get_type_hints(function) == typing.get_type_hints(original)
        assert inspect.iscoroutinefunction(function) == inspect.iscoroutinefunction(original)
        assert inspect.getfile(function) == inspect.getfile(original)
        names = list(inspect.signature(original).parameters)
        expected = names if "context" in names else [*names, "context"]
        assert list(inspect.signature(function).parameters) == expected


def test_the_worker_indexes_and_loads_the_same_functions_wrapped_or_not(
    make_app: MakeApp,
) -> None:
    wrapped = make_app(APPS / "v2", environment={"DOOW_TEST_WRAP": "1"})
    plain = make_app(APPS / "v2", environment={"DOOW_TEST_WRAP": "0"})

    # The metadata the worker reports to the host: names, ids, bindings, raw bindings.
    assert {n: f.metadata for n, f in wrapped.functions.items()} == {
        n: f.metadata for n, f in plain.functions.items()
    }
    assert {"sync_hello", "async_hello", "tick", "job", "sync_context"} <= set(wrapped.functions)
    # How the worker loaded each one: the same, except that it now passes ``context`` to
    # the wrapped functions that did not declare it.
    loaded_wrapped, loaded_plain = wrapped.describe(), plain.describe()
    assert loaded_wrapped.keys() == loaded_plain.keys()
    for name, loaded in loaded_wrapped.items():
        original = loaded_plain[name]
        if name == "ping":  # never wrapped
            assert loaded == original
            continue
        assert loaded["requires_context"] is True
        names = original["parameters"]
        expected = names if "context" in names else [*names, "context"]
        assert loaded["parameters"] == expected, name
        for key in ("requires_context", "parameters"):
            loaded.pop(key)
            original.pop(key)
        assert loaded == original, name


def test_the_worker_refuses_an_app_that_puts_the_decorator_above_app_route(
    azure_python: str,
) -> None:
    from doow_serverless_dev.azure_local import LocalFunctionApp

    app = LocalFunctionApp(APPS / "v2_wrong_order", python=azure_python)
    with pytest.raises(AppLoadError, match=r"below the app's decorators"):
        app.start()

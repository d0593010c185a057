"""with_azure_function in-process: its forms, what it keeps of the function, its budget.

Functions are called directly (as a unit test of a function app would) with the real
``azure.functions`` classes where they matter; events go to the real collector.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import subprocess
import sys
import time
import traceback
import typing
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest

from doow_serverless import DoowConfigError, DoowTracker, with_azure_function
from doow_serverless import azure_functions as integration
from doow_serverless._core.wire import event_id_from_seed
from doow_serverless._invocation import engine as _invocation
from doow_serverless.azure_functions import _timeout as timeout_discovery
from doow_serverless.azure_functions import default_tracker, resolve_function_timeout
from doow_serverless_dev.collector import Collector

from .conftest import AZURE_ENVIRON, LICENSE, TEST_KEY


@pytest.fixture(autouse=True)
def _forget_host_json() -> Iterator[None]:
    timeout_discovery._reset_host_json_cache()
    yield
    timeout_discovery._reset_host_json_cache()


@pytest.fixture
def tracker(azure_collector: Collector) -> Iterator[DoowTracker]:
    tracker = DoowTracker(TEST_KEY, endpoint=azure_collector.url, environ=AZURE_ENVIRON)
    yield tracker
    tracker.shutdown(timeout=1.0)


def request(url: str = "http://localhost/api/hello") -> func.HttpRequest:
    return func.HttpRequest("GET", url, body=b"")


def context(invocation_id: str) -> Any:
    """What the worker passes as ``context``: only ``invocation_id`` is read."""
    return SimpleNamespace(invocation_id=invocation_id, function_name="f", function_directory=".")


def track_one(tracker: DoowTracker) -> None:
    tracker.track(metric="api_calls", quantity=1, license_id=LICENSE)


def stored_ids(collector: Collector) -> list[str]:
    return sorted(event["event_id"] for event in collector.events())


# -- forms -----------------------------------------------------------------------------


def test_forms_with_a_tracker_and_as_its_method(
    tracker: DoowTracker, azure_collector: Collector
) -> None:
    @with_azure_function(tracker)
    def plain(req: func.HttpRequest) -> str:
        track_one(tracker)
        return "plain"

    @with_azure_function(tracker, flush_timeout=1.5, reserve=0.1, idempotency="attempt")
    def configured(req: func.HttpRequest) -> str:
        track_one(tracker)
        return "configured"

    @tracker.with_azure_function
    def method(req: func.HttpRequest) -> str:
        track_one(tracker)
        return "method"

    @tracker.with_azure_function(flush_timeout=1.0)
    async def method_async(req: func.HttpRequest) -> str:
        track_one(tracker)
        return "method_async"

    assert plain(request()) == "plain"
    assert configured(request()) == "configured"
    assert method(request()) == "method"
    assert asyncio.run(method_async(request())) == "method_async"
    assert azure_collector.stats()["events_stored"] == 4


@pytest.fixture
def fresh_default_tracker(
    azure_collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("DOOW_TRACK_API_KEY", TEST_KEY)
    monkeypatch.setenv("DOOW_TRACK_ENDPOINT", azure_collector.url)
    monkeypatch.setenv("FUNCTIONS_WORKER_RUNTIME", "python")
    monkeypatch.setattr(_invocation, "_default_tracker", None)
    yield
    built = _invocation._default_tracker
    if built is not None:
        built.shutdown(timeout=1.0)


@pytest.mark.usefixtures("fresh_default_tracker")
def test_bare_forms_use_one_default_tracker(azure_collector: Collector) -> None:
    @with_azure_function
    def bare(req: func.HttpRequest) -> str:
        track_one(default_tracker())
        return "bare"

    built = _invocation._default_tracker
    assert built is not None

    @with_azure_function(flush_timeout=1.0)
    async def bare_with_options(req: func.HttpRequest) -> str:
        track_one(default_tracker())
        return "options"

    assert _invocation._default_tracker is built
    assert bare(request()) == "bare"
    assert asyncio.run(bare_with_options(request())) == "options"
    assert azure_collector.stats()["events_stored"] == 2


def test_refuses_what_it_cannot_wrap(tracker: DoowTracker) -> None:
    with pytest.raises(DoowConfigError, match="expects a DoowTracker or a function"):
        with_azure_function(42)  # type: ignore[call-overload]
    with pytest.raises(DoowConfigError, match="idempotency"):
        with_azure_function(tracker, idempotency="never")  # type: ignore[call-overload]
    with pytest.raises(DoowConfigError, match="flush_timeout"):
        with_azure_function(tracker, flush_timeout=-1)


def test_refuses_to_sit_above_an_app_decorator(tracker: DoowTracker) -> None:
    app = func.FunctionApp()

    def hello(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("unmetered")

    registered = app.route(route="hello")(hello)

    with pytest.raises(DoowConfigError, match="below the app's decorators"):
        with_azure_function(tracker)(registered)
    with pytest.raises(DoowConfigError, match="below the app's decorators"):
        with_azure_function(registered)


# -- what the wrapper keeps ---------------------------------------------------------------


def test_keeps_name_annotations_and_asks_for_context_only_when_missing(
    tracker: DoowTracker,
) -> None:
    def hello(req: func.HttpRequest, *, extra: int = 3) -> func.HttpResponse:
        """Says hello."""
        return func.HttpResponse(str(extra))

    async def with_context(req: func.HttpRequest, context: func.Context) -> str:
        return context.invocation_id

    wrapped = with_azure_function(tracker)(hello)
    wrapped_context = with_azure_function(tracker)(with_context)

    assert wrapped.__name__ == "hello"
    assert wrapped.__doc__ == "Says hello."
    assert wrapped.__wrapped__ is hello  # type: ignore[attr-defined]
    assert typing.get_type_hints(wrapped) == typing.get_type_hints(hello)
    signature = inspect.signature(wrapped)
    assert list(signature.parameters) == ["req", "extra", "context"]
    asked = signature.parameters["context"]
    assert asked.kind is inspect.Parameter.KEYWORD_ONLY
    assert asked.default is None
    assert asked.annotation is inspect.Parameter.empty
    assert signature.return_annotation == inspect.signature(hello).return_annotation
    assert inspect.signature(wrapped_context) == inspect.signature(with_context)
    assert not inspect.iscoroutinefunction(wrapped)
    assert inspect.iscoroutinefunction(wrapped_context)
    # The v2 worker reports the directory of inspect.getfile(function) as the function's.
    assert inspect.getfile(wrapped) == inspect.getfile(hello) == __file__


def test_a_traceback_shows_the_function_and_keeps_the_exception(tracker: DoowTracker) -> None:
    class DeclinedError(Exception):
        pass

    error = DeclinedError("declined")

    @with_azure_function(tracker)
    def fails(req: func.HttpRequest) -> None:
        track_one(tracker)
        raise error

    with pytest.raises(DeclinedError) as caught:
        fails(request())

    assert caught.value is error
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert frames[-1].name == "fails"
    assert frames[-1].line == "raise error"
    wrapper_frame = next(frame for frame in frames if frame.name == "with_azure_function")
    assert wrapper_frame.filename == __file__
    # The wrapper's one-line body sits just below the first decorator: here the def line.
    assert wrapper_frame.line == "def fails(req: func.HttpRequest) -> None:"


# -- invocation ids -------------------------------------------------------------------------


def test_event_ids_come_from_the_invocation_id_the_context_carries(
    tracker: DoowTracker, azure_collector: Collector
) -> None:
    calls: list[tuple[Any, ...]] = []

    @with_azure_function(tracker)
    def asked(req: func.HttpRequest) -> None:  # the wrapper asks the worker for context
        calls.append((req,))
        track_one(tracker)
        track_one(tracker)

    @with_azure_function(tracker)
    def declared(req: func.HttpRequest, context: func.Context) -> None:
        calls.append((req, context))
        track_one(tracker)

    req = request()
    asked(req, context=context("inv-asked"))  # type: ignore[call-arg]
    declared(req, context("inv-positional"))
    declared(req, context=context("inv-keyword"))

    assert calls[0] == (req,)  # called without the context it did not ask for
    assert [c[1].invocation_id for c in calls[1:]] == ["inv-positional", "inv-keyword"]
    assert stored_ids(azure_collector) == sorted(
        event_id_from_seed(seed)
        for seed in ("inv-asked:0", "inv-asked:1", "inv-positional:0", "inv-keyword:0")
    )


def test_without_a_context_or_in_attempt_mode_every_call_gets_fresh_ids(
    tracker: DoowTracker, azure_collector: Collector
) -> None:
    @with_azure_function(tracker)
    def direct(req: func.HttpRequest) -> None:
        track_one(tracker)

    @with_azure_function(tracker, idempotency="attempt")
    async def attempt(req: func.HttpRequest) -> None:
        track_one(tracker)

    direct(request())
    direct(request())
    asyncio.run(attempt(request(), context=context("inv-retried")))  # type: ignore[call-arg]
    asyncio.run(attempt(request(), context=context("inv-retried")))  # type: ignore[call-arg]

    stats = azure_collector.stats()
    assert stats["events_stored"] == 4
    assert stats["duplicates"] == 0


# -- the budget -----------------------------------------------------------------------------


def test_a_hanging_collector_costs_at_most_the_time_left_before_the_timeout(
    tracker: DoowTracker, azure_collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AzureFunctionsJobHost__functionTimeout", "00:00:01.5")

    @with_azure_function(tracker, flush_timeout=30)
    def slow(req: func.HttpRequest) -> str:
        track_one(tracker)
        time.sleep(0.3)
        return "answered"

    azure_collector.set_faults({"then": {"action": "hang"}})
    started = time.monotonic()
    assert slow(request()) == "answered"
    elapsed = time.monotonic() - started

    # 1.5 s timeout - 0.25 s reserve, measured from the call; tolerance 0.3 s for a loaded
    # machine, and the flush must not give up early either.
    assert 1.25 - 0.3 < elapsed < 1.25 + 0.3
    assert tracker.stats().pending == 1
    azure_collector.clear_faults()
    assert tracker.flush(timeout=5.0).delivered == 1


def bound(timeout: float | None, *arguments: object) -> Any:
    """What the wrapper counts as left, 10 s into an invocation with these arguments."""
    unused: Any = None
    call = integration._Invocation(lambda: None, unused, timeout, True, None)
    return call.remaining(time.monotonic() - 10.0, tuple(arguments), {})


def test_the_time_left_is_measured_from_the_call_and_http_is_held_to_230_seconds() -> None:
    assert bound(300.0) == pytest.approx(290.0, abs=0.5)
    assert bound(300.0, request()) == pytest.approx(220.0, abs=0.5)
    assert bound(120.0, request()) == pytest.approx(110.0, abs=0.5)
    assert bound(None) is None  # an unbounded plan: only flush_timeout bounds the flush
    assert bound(None, request()) == pytest.approx(220.0, abs=0.5)
    assert bound(300.0, "not a request") == pytest.approx(290.0, abs=0.5)


# -- the function timeout --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:05:00", 300.0),
        ("00:00:01.5", 1.5),
        ("01:30:00", 5400.0),
        ("1.00:00:00", 86400.0),
        ("-1", None),
        ("-00:00:01", None),
    ],
)
def test_time_spans(text: str, seconds: float | None) -> None:
    environ = {"AzureFunctionsJobHost__functionTimeout": text, "WEBSITE_SKU": "ElasticPremium"}
    assert resolve_function_timeout(environ).seconds == seconds


@pytest.mark.parametrize("text", ["5 minutes", "00:60:00", "00:00:00", "300", ""])
def test_a_bad_time_span_is_reported_and_the_default_used(
    text: str, caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.WARNING, logger="doow_serverless")
    timeout = resolve_function_timeout({"AzureFunctionsJobHost__functionTimeout": text})
    assert timeout == (300.0, "plan default (Consumption)")
    assert bool(caplog.records) == bool(text)


def write_host_json(folder: Path, timeout: str | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {"version": "2.0"}
    if timeout is not None:
        document["functionTimeout"] = timeout
    path = folder / "host.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_host_json_is_found_next_to_the_function_or_above_it_and_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    app = tmp_path / "app"
    path = write_host_json(app, "00:02:00")
    v2_script = str(app / "function_app.py")
    v1_script = str(app / "HttpTrigger" / "__init__.py")

    assert resolve_function_timeout({}, source_file=v2_script) == (120.0, str(path))
    assert resolve_function_timeout({}, source_file=v1_script) == (120.0, str(path))

    write_host_json(app, "00:09:00")  # read once per process: a change is not seen
    assert resolve_function_timeout({}, source_file=v2_script).seconds == 120.0
    # The app setting beats host.json.
    environ = {"AzureFunctionsJobHost__functionTimeout": "00:00:30"}
    assert resolve_function_timeout(environ, source_file=v2_script).seconds == 30.0


def test_host_json_in_the_script_root_or_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_host_json(tmp_path / "wwwroot", "00:03:00")
    cwd = write_host_json(tmp_path / "cwd", "00:04:00")
    monkeypatch.chdir(cwd.parent)

    assert resolve_function_timeout({"AzureWebJobsScriptRoot": str(root.parent)}) == (
        180.0,
        str(root),
    )
    assert resolve_function_timeout({}) == (240.0, str(cwd))


def test_plan_defaults_and_the_consumption_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_function_timeout({}).seconds == 300.0  # unknown (a local host): shortest
    assert resolve_function_timeout({"WEBSITE_SKU": "Dynamic"}).seconds == 300.0
    assert resolve_function_timeout({"WEBSITE_SKU": "FlexConsumption"}).seconds == 1800.0
    assert resolve_function_timeout({"WEBSITE_SKU": "ElasticPremium"}).seconds == 1800.0
    assert resolve_function_timeout({"WEBSITE_SKU": "PremiumV3"}).seconds == 1800.0
    write_host_json(tmp_path, None)  # host.json without functionTimeout: the default
    assert resolve_function_timeout({"WEBSITE_SKU": "Standard"}).seconds == 1800.0
    for text in ("01:00:00", "-1"):
        consumption = {"WEBSITE_SKU": "Dynamic", "AzureFunctionsJobHost__functionTimeout": text}
        assert resolve_function_timeout(consumption).seconds == 600.0


def test_an_unreadable_host_json_is_reported_and_the_default_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "host.json").write_text("{ not json", encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="doow_serverless")
    assert resolve_function_timeout({}).seconds == 300.0
    assert "could not read" in caplog.text


# -- cold start -------------------------------------------------------------------------------


def test_importing_the_integration_imports_no_azure_library_and_no_inspect() -> None:
    code = (
        "import sys; from doow_serverless import with_azure_function; "
        "print(*[m in sys.modules for m in ('azure.functions', 'inspect', 'httpx', 'asyncio')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False", "False", "False"]

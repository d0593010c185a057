"""with_lambda composed with Powertools, in either order, in-process.

Powertools' decorators call the handler with the same (event, context); with_lambda must
keep what they read (the context, the handler's name) and they must keep its flush.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, APIGatewayRestResolver
from aws_lambda_powertools.metrics import MetricUnit

from doow_serverless import DoowTracker, with_lambda
from doow_serverless_dev.collector import Collector

from .conftest import EVENTS_DIR, lambda_context

Handler = Callable[[dict[str, Any], Any], Any]
LICENSE = "lic_powertools"


def fresh_logger(stream: io.StringIO) -> Logger:
    # Loggers of one service share a logging.Logger and its handler: one service per test.
    return Logger(service=f"tests-{uuid.uuid4().hex}", stream=stream)


def load_event(path: Path) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(path.read_text())
    return event


@pytest.mark.parametrize("doow_outside", [True, False], ids=["doow-outside", "doow-inside"])
def test_logger_inject_lambda_context(
    tracker: DoowTracker, lambda_collector: Collector, doow_outside: bool
) -> None:
    stream = io.StringIO()
    logger = fresh_logger(stream)

    def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
        """Logs and tracks."""
        logger.info("handling")
        tracker.track(metric="api_calls", quantity=1, license_id=LICENSE)
        return {"ok": "yes"}

    if doow_outside:
        wrapped = with_lambda(tracker)(logger.inject_lambda_context(handler))
    else:
        wrapped = logger.inject_lambda_context(with_lambda(tracker)(handler))

    context = lambda_context(request_id="logger-request")
    assert wrapped({}, context) == {"ok": "yes"}
    assert wrapped.__name__ == "handler"

    record = json.loads(stream.getvalue().splitlines()[0])
    assert record["message"] == "handling"
    assert record["function_request_id"] == "logger-request"
    assert lambda_collector.stats()["events_stored"] == 1


@pytest.mark.parametrize("doow_outside", [True, False], ids=["doow-outside", "doow-inside"])
def test_metrics_log_metrics(
    tracker: DoowTracker,
    lambda_collector: Collector,
    capsys: pytest.CaptureFixture[str],
    doow_outside: bool,
) -> None:
    metrics = Metrics(namespace="DoowTests", service="tests")

    def handler(event: dict[str, Any], context: Any) -> str:
        metrics.add_metric(name="Calls", unit=MetricUnit.Count, value=1)
        tracker.track(metric="api_calls", quantity=1, license_id=LICENSE)
        return "done"

    if doow_outside:
        wrapped = with_lambda(tracker)(metrics.log_metrics(handler))
    else:
        wrapped = metrics.log_metrics(with_lambda(tracker)(handler))

    assert wrapped({}, lambda_context()) == "done"

    # Powertools' metric line, among the SDK's own lines (written ahead of the flush).
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf["Calls"] == [1.0]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "DoowTests"
    assert lambda_collector.stats()["events_stored"] == 1


def rest_app(tracker: DoowTracker) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver()

    @app.get("/hello")
    def hello() -> dict[str, str]:
        tracker.track(metric="api_calls", quantity=1, license_id=LICENSE)
        return {"message": "hello"}

    return app


def http_app(tracker: DoowTracker) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver()

    @app.get("/hello")
    def hello() -> dict[str, str]:
        tracker.track(metric="api_calls", quantity=1, license_id=LICENSE)
        return {"message": "hello"}

    return app


@pytest.mark.parametrize(
    ("make_app", "event_file"),
    [
        (rest_app, EVENTS_DIR / "hello.json"),
        (http_app, Path(__file__).parent / "events" / "http_api.json"),
    ],
    ids=["rest", "http"],
)
@pytest.mark.parametrize("form", ["resolve-wrapped", "handler-wrapped", "logger-inside"])
def test_event_handler_resolvers(
    tracker: DoowTracker,
    lambda_collector: Collector,
    make_app: Callable[[DoowTracker], APIGatewayRestResolver | APIGatewayHttpResolver],
    event_file: Path,
    form: str,
) -> None:
    app = make_app(tracker)
    logger = fresh_logger(io.StringIO())

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    wrapped: Handler
    if form == "resolve-wrapped":
        wrapped = with_lambda(tracker)(app.resolve)
    elif form == "handler-wrapped":
        wrapped = with_lambda(tracker)(logger.inject_lambda_context(handler))
    else:
        wrapped = logger.inject_lambda_context(with_lambda(tracker)(handler))

    response = wrapped(load_event(event_file), lambda_context())

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"message": "hello"}
    assert lambda_collector.stats()["events_stored"] == 1

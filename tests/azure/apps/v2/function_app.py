"""The v2 test app. DOOW_TEST_WRAP=0 loads the same functions unwrapped, for comparisons.

Query parameters: ``events`` (how many to track, default 1), ``sleep_ms`` (work before
answering).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import azure.functions as func

from doow_serverless import DoowTracker, with_azure_function

F = TypeVar("F", bound=Callable[..., Any])

WRAP = os.environ.get("DOOW_TEST_WRAP", "1") == "1"
LICENSE = "lic_azure_tests"

tracker = DoowTracker()
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def metered(function: F) -> F:
    return cast(F, with_azure_function(tracker)(function)) if WRAP else function


class PaymentDeclinedError(Exception):
    pass


def track(req: func.HttpRequest, metric: str = "api_calls") -> float:
    for _ in range(int(req.params.get("events", "1"))):
        tracker.track(metric=metric, quantity=1, license_id=LICENSE)
    return float(req.params.get("sleep_ms", "0")) / 1000


@app.route(route="sync_hello")
@metered
def sync_hello(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(track(req))
    return func.HttpResponse("sync")


@app.route(route="async_hello")
@metered
async def async_hello(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(track(req))
    return func.HttpResponse("async")


def describe(context: func.Context) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(
            {
                "invocation_id": context.invocation_id,
                "function_name": context.function_name,
                "function_directory": context.function_directory,
            }
        ),
        mimetype="application/json",
    )


@app.route(route="sync_context")
@metered
def sync_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    track(req)
    return describe(context)


@app.route(route="async_context")
@metered
async def async_context(context: func.Context, req: func.HttpRequest) -> func.HttpResponse:
    track(req)
    return describe(context)


@app.route(route="fails")
@metered
def fails(req: func.HttpRequest) -> func.HttpResponse:
    track(req)
    raise PaymentDeclinedError(f"card declined for {req.params.get('order', '?')}")


@app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer", run_on_startup=False)
@metered
def tick(timer: func.TimerRequest) -> None:
    tracker.track(metric="ticks", quantity=1, license_id=LICENSE)


@app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
@metered
async def job(msg: func.QueueMessage) -> None:
    tracker.track(metric="jobs", quantity=1, license_id=LICENSE, attribution={"id": str(msg.id)})


@app.route(route="ping")
async def ping(req: func.HttpRequest) -> func.HttpResponse:
    """Never wrapped: answers as soon as the worker's event loop is free."""
    return func.HttpResponse("pong")

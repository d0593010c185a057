"""Three HTTP functions in one worker: no SDK, with_azure_function (one event), raw POST."""

from __future__ import annotations

import json
import os
import time
import uuid

import azure.functions as func
import httpcore

from doow_serverless import DoowTracker, with_azure_function

tracker = DoowTracker()
# httpcore: the HTTP library the SDK itself uses, and all this worker's environment has.
client = httpcore.ConnectionPool()
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
URL = os.environ["DOOW_TRACK_ENDPOINT"] + "/telemetry/events"
HEADERS = {
    "Authorization": f"Bearer {os.environ['DOOW_TRACK_API_KEY']}",
    "Content-Type": "application/json",
}


@app.route(route="plain")
def plain(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok")


@app.route(route="ours")
@with_azure_function(tracker)
def ours(req: func.HttpRequest) -> func.HttpResponse:
    tracker.track(metric="api_calls", quantity=1, license_id="lic_bench")
    return func.HttpResponse("ok")


@app.route(route="ours_async")
@with_azure_function(tracker)
async def ours_async(req: func.HttpRequest) -> func.HttpResponse:
    tracker.track(metric="api_calls", quantity=1, license_id="lic_bench")
    return func.HttpResponse("ok")


@app.route(route="raw_post")
def raw_post(req: func.HttpRequest) -> func.HttpResponse:
    """One raw POST (httpcore) of a one-event batch over a kept-alive connection: the
    yardstick."""
    body = {
        "batch_id": str(uuid.uuid4()),
        "sdk_version": "raw",
        "events": [
            {
                "event_id": str(uuid.uuid4()),
                "license_id": "lic_bench",
                "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "source_system": "sdk",
                "kind": "USAGE",
                "measurements": [{"metric_name": "api_calls", "quantity": 1}],
            }
        ],
    }
    answer = client.request(
        "POST",
        URL,
        headers=list(HEADERS.items()),
        content=json.dumps(body).encode(),
        extensions={"timeout": {"connect": 10, "read": 10, "write": 10, "pool": 10}},
    )
    return func.HttpResponse(str(answer.status))

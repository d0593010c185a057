"""A function app (v2 programming model) metered with doow-serverless.

``with_azure_function`` goes right above each ``def``, below the app's decorators: after the
function returns or raises, it flushes the usage events within the time the function has
left (``functionTimeout`` in host.json; 230 s at most for HTTP). Run it with ``func start``
against a local collector (see README.md here and docs/azure.md).
"""

from __future__ import annotations

import json
import os

import azure.functions as func

from doow_serverless import DoowTracker, with_azure_function

# Module level: built once per worker process and reused by every invocation it serves,
# so the connection to Doow made by one invocation serves the next ones.
tracker = DoowTracker()  # DOOW_TRACK_API_KEY and DOOW_TRACK_ENDPOINT come from app settings
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

LICENSE_ID = os.environ.get("DOOW_LICENSE_ID", "lic_example")


@app.route(route="hello", methods=["GET"])
@with_azure_function(tracker)
def hello(req: func.HttpRequest) -> func.HttpResponse:
    tracker.track(
        metric="api_calls", quantity=1, license_id=LICENSE_ID, attribution={"route": "hello"}
    )
    return func.HttpResponse("hello from Azure Functions\n")


@app.route(route="orders", methods=["POST"])
@with_azure_function(tracker)
async def orders(req: func.HttpRequest) -> func.HttpResponse:
    """An ``async def`` function: it runs on the worker's event loop, and so does not block
    it while its events are sent (the flush runs in a helper thread)."""
    try:
        items = int(req.get_json().get("items", 1))
    except (ValueError, AttributeError):
        return func.HttpResponse('send {"items": <number>}\n', status_code=400)
    tracker.track(
        metric="api_calls", quantity=1, license_id=LICENSE_ID, attribution={"route": "orders"}
    )
    tracker.track(metric="order_items", quantity=items, license_id=LICENSE_ID, unit="items")
    return func.HttpResponse(json.dumps({"items": items}), mimetype="application/json")


@app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer", run_on_startup=False)
@with_azure_function(tracker)
def housekeeping(timer: func.TimerRequest) -> None:
    tracker.track(metric="scheduled_runs", quantity=1, license_id=LICENSE_ID)


@app.queue_trigger(arg_name="job", queue_name="usage-jobs", connection="AzureWebJobsStorage")
@with_azure_function(tracker)
def jobs(job: func.QueueMessage, context: func.Context) -> None:
    """A redelivered message is a new invocation with a new invocation id: keying the event
    on the message id makes the redelivery count once."""
    tracker.track(
        metric="jobs_processed",
        quantity=1,
        license_id=LICENSE_ID,
        idempotency_key=f"usage-jobs:{job.id}",
        metadata={"invocation_id": context.invocation_id},
    )

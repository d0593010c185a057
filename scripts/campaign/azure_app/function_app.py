"""The Azure campaign's function app: tracks the usage events its request names, then answers.

Run by the real Azure library worker (``azure-functions-runtime``, the v2 programming
model); the tracker is built once per worker process from ``DOOW_TRACK_*``. The HTTP
request's JSON body says exactly what to track, so the campaign knows every event:

    {"events": [{"key": "run:7:0", "quantity": 12, "license_id": "lic_..."}, ...],
     "sleep_ms": 20,        # work this long after tracking, or
     "leave_ms": 300,       # work until this much of the function timeout is left
     "track_last": true,    # track after the work, as the function returns (default: before)
     "timeout_ms": 1500}    # the function timeout the host enforces

Just before it returns, the function prints ``{"campaign_returning": N}`` (N from the body's
``number``): the flush follows, and the campaign may kill the worker then.

Azure tells a function nothing about its time, so ``leave_ms`` is measured from when the
function was called, as the SDK measures its budget. ``campaign_sync`` runs on the
worker's thread pool, ``campaign_async`` on its event loop. When the server refuses events
for good, their ids are printed as one JSON line (``{"campaign_rejected": {...}}``).
Any other delivery error is printed as ``{"campaign_undelivered": {"message": ...}}``: what
the SDK met (a refused connection) is evidence the campaign reads.
"""

# The tracking and the on_error report are the same, on purpose, in the three campaign
# functions (scripts/campaign/: function/app.py, vercel_function/api/campaign_vercel.py,
# azure_app/function_app.py): each runs under its own platform's interpreter with only its
# own folder importable, so there is no module they could share.

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import azure.functions as func

from doow_serverless import (
    DoowDeliveryError,
    DoowError,
    DoowRejectedError,
    DoowTracker,
    with_azure_function,
)

METRIC = "campaign_units"
REJECTED_MARKER = "campaign_rejected"
UNDELIVERED_MARKER = "campaign_undelivered"
RETURNING_MARKER = "campaign_returning"


def _on_error(error: DoowError) -> None:
    if isinstance(error, DoowRejectedError):
        document: dict[str, Any] = {
            REJECTED_MARKER: {
                "status": error.status,
                "event_ids": [rejection.event_id for rejection in error.rejections],
            }
        }
    elif isinstance(error, DoowDeliveryError):  # what the SDK met: a refused connection...
        document = {UNDELIVERED_MARKER: {"message": str(error)}}
    else:
        return
    print(json.dumps(document), flush=True)


tracker = DoowTracker(on_error=_on_error)
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _track_planned(plan: dict[str, Any]) -> None:
    for item in plan.get("events", []):
        tracker.track(
            metric=METRIC,
            quantity=item["quantity"],
            license_id=item["license_id"],
            idempotency_key=item["key"],
        )


def _track(req: func.HttpRequest) -> tuple[dict[str, Any], float]:
    """Track what the request names (unless it says to track last); the plan, and how long
    to work."""
    called = time.monotonic()
    plan: dict[str, Any] = req.get_json()
    if not plan.get("track_last"):
        _track_planned(plan)
    leave_ms = plan.get("leave_ms")
    if leave_ms is None:
        return plan, plan.get("sleep_ms", 0) / 1000
    until = called + (plan["timeout_ms"] - leave_ms) / 1000
    return plan, max(0.0, until - time.monotonic())


def _answer(plan: dict[str, Any]) -> func.HttpResponse:
    """Track last if asked; say the flush begins; the response."""
    if plan.get("track_last"):
        _track_planned(plan)
    print(json.dumps({RETURNING_MARKER: plan.get("number")}), flush=True)
    body = json.dumps({"tracked": len(plan.get("events", []))})
    return func.HttpResponse(body, mimetype="application/json")


@app.route(route="campaign_sync", methods=["POST"])
@with_azure_function(tracker)
def campaign_sync(req: func.HttpRequest) -> func.HttpResponse:
    plan, work = _track(req)
    time.sleep(work)
    return _answer(plan)


@app.route(route="campaign_async", methods=["POST"])
@with_azure_function(tracker)
async def campaign_async(req: func.HttpRequest) -> func.HttpResponse:
    plan, work = _track(req)
    await asyncio.sleep(work)
    return _answer(plan)

"""The campaign's Lambda function: tracks the usage events its event names, then returns.

Run by the real runtime client (``python -m awslambdaric app.handler``). The tracker is
built once per execution environment from ``DOOW_TRACK_*``, as a real function would. The
event says exactly what to track, so the campaign knows every event that exists:

    {"events": [{"key": "run:7:0", "quantity": 12, "license_id": "lic_..."}, ...],
                            # no "key": the id is derived from the request id (the default)
     "sleep_ms": 20,        # work this long after tracking, or
     "leave_ms": 300,       # work until this much of the invocation's time is left
     "track_last": true}    # track after the work, as the handler returns (default: before)

Once it has tracked its events, the handler prints ``{"campaign_tracked": N, "pid": P}``,
and just before it returns ``{"campaign_returning": N, "pid": P}`` (N from the event's
``number``, P its process: with Managed Instances, one of several workers): the moment the
flush begins, which the campaign may kill it after. Its answer names the process too.

When the server refuses events for good, their ids are printed as one JSON line
(``{"campaign_rejected": {...}}``), so the campaign can tell "rejected" from "lost".
Any other delivery error is printed as ``{"campaign_undelivered": {"message": ...}}``: what
the SDK met (a refused connection) is evidence the campaign reads.
"""

# The tracking and the on_error report are the same, on purpose, in the three campaign
# functions (scripts/campaign/: function/app.py, vercel_function/api/campaign_vercel.py,
# azure_app/function_app.py): each runs under its own platform's interpreter with only its
# own folder importable, so there is no module they could share.

from __future__ import annotations

import json
import os
import time
from typing import Any

from doow_serverless import (
    DoowDeliveryError,
    DoowError,
    DoowRejectedError,
    DoowTracker,
    with_lambda,
)

METRIC = "campaign_units"
REJECTED_MARKER = "campaign_rejected"
UNDELIVERED_MARKER = "campaign_undelivered"
TRACKED_MARKER = "campaign_tracked"
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


def _track(planned: list[dict[str, Any]], number: object) -> None:
    for item in planned:
        tracker.track(
            metric=METRIC,
            quantity=item["quantity"],
            license_id=item["license_id"],
            idempotency_key=item.get("key"),  # none: derived from the request id
        )
    print(json.dumps({TRACKED_MARKER: number, "pid": os.getpid()}), flush=True)


@with_lambda(tracker)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    planned = event.get("events", [])
    number = event.get("number")
    if not event.get("track_last"):
        _track(planned, number)
    leave_ms = event.get("leave_ms")
    if leave_ms is not None:
        while context.get_remaining_time_in_millis() > leave_ms:
            time.sleep(0.002)
    else:
        time.sleep(event.get("sleep_ms", 0) / 1000)
    if event.get("track_last"):
        _track(planned, number)
    print(json.dumps({RETURNING_MARKER: number, "pid": os.getpid()}), flush=True)
    return {"tracked": len(planned), "pid": os.getpid()}

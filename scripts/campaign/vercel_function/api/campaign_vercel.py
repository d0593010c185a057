"""The Vercel campaign's function: tracks the usage events its request names, then answers.

Served by Vercel's own runtime (``vercel_runtime.vc_init``) as a ``handler`` class; the
tracker is built once per instance from ``DOOW_TRACK_*``, as a real function would. The
request body says exactly what to track, so the campaign knows every event that exists:

    {"events": [{"key": "run:7:0", "quantity": 12, "license_id": "lic_..."}, ...],
     "sleep_ms": 20,        # work this long after tracking, or
     "leave_ms": 300,       # work until this much is left before the invocation's deadline
     "track_last": true}    # track after the work, as the handler returns (default: before)

Just before it answers, the handler prints ``{"campaign_returning": N}`` (N from the body's
``number``): the flush follows the response, and the campaign may kill the instance then.

The deadline is the runtime's (``vercel_runtime.get_deadline()``, from the platform's
``x-vercel-internal-deadline`` header), the one the SDK budgets its flush against. When
the server refuses events for good, their ids are printed as one JSON line
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
import time
from http.server import BaseHTTPRequestHandler
from importlib import import_module
from typing import Any

from doow_serverless import (
    DoowDeliveryError,
    DoowError,
    DoowRejectedError,
    DoowTracker,
    with_vercel,
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


def _seconds_left() -> float:
    deadline = import_module("vercel_runtime").get_deadline()
    return 0.0 if deadline is None else float(deadline.timestamp() - time.time())


tracker = DoowTracker(on_error=_on_error)


def _track(planned: list[dict[str, Any]]) -> None:
    for item in planned:
        tracker.track(
            metric=METRIC,
            quantity=item["quantity"],
            license_id=item["license_id"],
            idempotency_key=item["key"],
        )


@with_vercel(tracker)
class handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        plan = json.loads(self.rfile.read(length) or b"{}")
        planned = plan.get("events", [])
        if not plan.get("track_last"):
            _track(planned)
        leave_ms = plan.get("leave_ms")
        if leave_ms is not None:
            while _seconds_left() * 1000 > leave_ms:
                time.sleep(0.002)
        else:
            time.sleep(plan.get("sleep_ms", 0) / 1000)
        if plan.get("track_last"):
            _track(planned)
        print(json.dumps({RETURNING_MARKER: plan.get("number")}), flush=True)
        body = json.dumps({"tracked": len(planned)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

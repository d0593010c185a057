"""An app whose worker SIGKILLs itself at a chosen moment of a flush (``KILL_AT``).

Fault injection, not a stand-in: the worker, the tracker and the collector are real; the
process dies as an out-of-memory kill or a crash in native code would kill it, at an exact
step of the flush that a test cannot otherwise hit: ``before-spool`` (its line written,
its spool file not), ``after-spool`` (spooled, no request made yet). Other moments (a
request in flight, a batch stored but not answered) are reached from outside, by the test.

Two HTTP functions, the same but for how the worker runs them: ``kill_points_sync`` (a
``def``, flushed on the worker's thread that ran it) and ``kill_points_async`` (an ``async
def``, flushed in a helper thread off the worker's event loop). Query parameters: ``run``
and ``count`` (track ``count`` events keyed ``run:0`` ...), ``leave_ms`` (work until that
many ms of the function timeout are left, counted from the function's start; negative:
past it), ``track_first=0`` (track as the work ends rather than before it).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import azure.functions as func

from doow_serverless import DoowTracker, with_azure_function
from doow_serverless._durability import spool
from doow_serverless.azure_functions import resolve_function_timeout

KILL_AT = os.environ.get("KILL_AT", "")
LICENSE = "lic_kill_points"


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


if KILL_AT in ("before-spool", "after-spool"):
    _save = spool.Spool.save

    def _save_then_die(self: spool.Spool, batch_id: str, body: bytes) -> bool:
        if KILL_AT == "before-spool":
            _die()
        saved = _save(self, batch_id, body)
        _die()
        return saved

    spool.Spool.save = _save_then_die  # type: ignore[method-assign]

# What the SDK budgets against too: host.json's functionTimeout, which Azure never tells
# the function.
TIMEOUT_S = resolve_function_timeout(source_file=__file__).seconds or 0.0

tracker = DoowTracker()
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


class Plan:
    """What one invocation asks for, from its query string."""

    def __init__(self, req: func.HttpRequest) -> None:
        self.started = time.monotonic()
        self.run = req.params["run"]
        self.count = int(req.params.get("count", "3"))
        leave_ms = req.params.get("leave_ms")
        self.leave_ms = None if leave_ms is None else float(leave_ms)
        self.track_first = req.params.get("track_first", "1") == "1"

    def ms_left(self) -> float:
        return (TIMEOUT_S - (time.monotonic() - self.started)) * 1000

    def working(self) -> bool:
        return self.leave_ms is not None and self.ms_left() > self.leave_ms

    def track(self) -> None:
        for n in range(self.count):
            key = f"{self.run}:{n}"
            tracker.track(metric="api_calls", quantity=1, license_id=LICENSE, idempotency_key=key)

    def answer(self) -> func.HttpResponse:
        document = {"tracked": self.count, "remaining_ms": self.ms_left()}
        return func.HttpResponse(json.dumps(document), mimetype="application/json")


@app.route(route="kill_points_sync")
@with_azure_function(tracker)
def kill_points_sync(req: func.HttpRequest) -> func.HttpResponse:
    plan = Plan(req)
    if plan.track_first:
        plan.track()
    while plan.working():
        time.sleep(0.002)
    if not plan.track_first:
        plan.track()
    return plan.answer()


@app.route(route="kill_points_async")
@with_azure_function(tracker)
async def kill_points_async(req: func.HttpRequest) -> func.HttpResponse:
    plan = Plan(req)
    if plan.track_first:
        plan.track()
    while plan.working():
        await asyncio.sleep(0.002)
    if not plan.track_first:
        plan.track()
    return plan.answer()

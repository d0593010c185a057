"""A handler whose process SIGKILLs itself at a chosen moment of its flush (``KILL_AT``).

Fault injection, not a stand-in: the runtime, the tracker and the collector are real; the
process dies as an out-of-memory kill or a crash in native code would kill it, at an exact
step of the flush that a test cannot otherwise hit: ``before-spool`` (its line written,
its spool file not), ``after-spool`` (spooled, no request made yet). Other moments (a
request in flight, a batch stored but not answered) are reached from outside, by the test.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from doow_serverless import DoowTracker, with_lambda
from doow_serverless._durability import spool

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

tracker = DoowTracker()


@with_lambda(tracker)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Tracks ``count`` events keyed by ``run`` and works until ``leave_ms`` is left: the
    usage tracked first (``track_first``) or, as usage is often known, at the end."""
    track_first = event.get("track_first", True)
    if track_first:
        _track(event)
    leave_ms = event.get("leave_ms")
    if leave_ms is not None:
        while context.get_remaining_time_in_millis() > leave_ms:
            time.sleep(0.002)
    if not track_first:
        _track(event)
    return {"tracked": event["count"], "remaining_ms": context.get_remaining_time_in_millis()}


def _track(event: dict[str, Any]) -> None:
    for n in range(event["count"]):
        key = f"{event['run']}:{n}"
        tracker.track(metric="api_calls", quantity=1, license_id=LICENSE, idempotency_key=key)

"""Handlers the runtime tests load with the real runtime client (module ``handlers``)."""

from __future__ import annotations

import os
import time
from typing import Any

from doow_serverless import DoowTracker, with_lambda

tracker = DoowTracker()
LICENSE = "lic_runtime_tests"


class PaymentDeclined(Exception):
    pass


@with_lambda(tracker)
def raising(event: dict[str, Any], context: Any) -> dict[str, Any]:
    tracker.track(metric="attempts", quantity=1, license_id=LICENSE)
    tracker.track(metric="tokens", quantity=42, license_id=LICENSE)
    raise PaymentDeclined(f"card declined for {event.get('order', 'unknown')}")


@with_lambda(tracker)
def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Tracks one event, then works until ``leave_ms`` before the deadline."""
    tracker.track(metric="api_calls", quantity=1, license_id=LICENSE)
    leave_ms = event["leave_ms"]
    while context.get_remaining_time_in_millis() > leave_ms:
        time.sleep(0.005)
    return {"pid": os.getpid(), "remaining_ms": context.get_remaining_time_in_millis()}

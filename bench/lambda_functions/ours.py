"""doow-serverless: one event per invocation, flushed by with_lambda before it answers."""

from __future__ import annotations

from typing import Any

from doow_serverless import DoowTracker, with_lambda

tracker = DoowTracker()


@with_lambda(tracker)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    tracker.track(metric="api_calls", quantity=1, license_id="lic_bench")
    return {"statusCode": 200}

"""A handler with ``idempotency="attempt"``: every attempt of a request counts."""

from __future__ import annotations

from typing import Any

from doow_serverless import DoowTracker

tracker = DoowTracker()


@tracker.with_lambda(idempotency="attempt")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    tracker.track(metric="api_calls", quantity=1, license_id="lic_runtime_tests")
    return {"statusCode": 200}

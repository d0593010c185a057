"""doow-serverless as in ours.py, with the disk spool turned off: what the spool costs."""

from __future__ import annotations

from typing import Any

from doow_serverless import DoowTracker, with_lambda

tracker = DoowTracker(spool=False)


@with_lambda(tracker)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    tracker.track(metric="api_calls", quantity=1, license_id="lic_bench")
    return {"statusCode": 200}

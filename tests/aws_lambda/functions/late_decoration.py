"""A handler wrapped during its first invocation: too late to register an extension (the
runtime has asked for an invocation already), so the after-response mode falls back."""

from __future__ import annotations

from typing import Any

from doow_serverless import DoowTracker, with_lambda

tracker = DoowTracker()
_wrapped: Any = None


def _handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    tracker.track(metric="api_calls", quantity=1, license_id="lic_late")
    return {"tracked": 1}


def handler(event: dict[str, Any], context: Any) -> Any:
    global _wrapped
    if _wrapped is None:
        _wrapped = with_lambda(tracker)(_handler)
    return _wrapped(event, context)

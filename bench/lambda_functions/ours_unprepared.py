"""As ours.py, but without building the HTTP client at init (what prepare() saves)."""

from __future__ import annotations

from typing import Any

from doow_serverless import DoowTracker
from doow_serverless._invocation.engine import InvocationEngine
from doow_serverless._invocation.policy import resolve_flush_policy
from doow_serverless.aws_lambda import _wrap

tracker = DoowTracker()


def _handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    tracker.track(metric="api_calls", quantity=1, license_id="lic_bench")
    return {"statusCode": 200}


handler = _wrap(
    _handler,
    InvocationEngine(tracker, resolve_flush_policy(None, None), "invocation", process_wide=True),
    None,
)

"""Run a Lambda handler on this machine under the real runtime client (``awslambdaric``).

This package plays only Lambda's control plane (the Runtime API, deadlines, freezing and
killing the execution environment); the handler is loaded and called by the same runtime
client that AWS runs. ``doow-serverless invoke``, the demo and the tests use it. ``_logs``
plays CloudWatch Logs' side of a subscription filter (the payloads a forwarder is invoked
with) and builds the exports of where Lambda keeps a failed event.

    with LocalFunction("app.handler", code_dir="examples/lambda/function", timeout=3) as function:
        result = function.invoke({"path": "/"})
"""

from __future__ import annotations

from ._function import InvocationResult, LocalFunction
from ._logs import (
    control_event,
    dead_letter_export,
    envelope,
    on_failure_export,
    subscription_event,
    subscription_events,
)
from ._runtime_api import Invocation, RuntimeAPIServer

__all__ = [
    "Invocation",
    "InvocationResult",
    "LocalFunction",
    "RuntimeAPIServer",
    "control_event",
    "dead_letter_export",
    "envelope",
    "on_failure_export",
    "subscription_event",
    "subscription_events",
]

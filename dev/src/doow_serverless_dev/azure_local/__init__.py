"""Run an Azure function app on this machine under the real Azure library worker.

Private: for this project's demo, benchmarks and tests. This package plays the Functions
host (worker init, function metadata, function load, invocations, the function timeout);
the app is indexed, loaded and invoked by ``azure-functions-runtime`` (v2 apps) or
``azure-functions-runtime-v1`` (v1 apps), the library workers Azure runs for Python 3.13+.
Triggers: HTTP, timer, queue, and Event Hubs batches (``event_hub_batch``, with the
records a diagnostic setting sends, ``diagnostic_records``).

    with LocalFunctionApp("examples/azure", python=".venv-azure/bin/python") as app:
        result = app.invoke("hello", http_request("GET", "http://localhost/api/hello"))
"""

from __future__ import annotations

from ._app import (
    AppLoadError,
    Call,
    InvocationResult,
    LoadedFunction,
    LocalFunctionApp,
    TriggerInput,
    host_function_timeout,
    http_request,
    queue_message,
    timer_tick,
    v1_metadata,
)
from ._event_hub import diagnostic_records, event_hub_batch

__all__ = [
    "AppLoadError",
    "Call",
    "InvocationResult",
    "LoadedFunction",
    "LocalFunctionApp",
    "TriggerInput",
    "diagnostic_records",
    "event_hub_batch",
    "host_function_timeout",
    "http_request",
    "queue_message",
    "timer_tick",
    "v1_metadata",
]

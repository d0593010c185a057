"""The Azure Functions part of `make demo`: examples/azure under the real library worker.

The example app (v2 model: HTTP, async HTTP, timer and queue functions wrapped in
with_azure_function) is indexed, loaded and invoked by ``azure-functions-runtime`` in the
Python 3.13 virtualenv ``.venv-azure`` (``make azure-venv``), with this package playing the
Functions host; its usage events go to the collector at ``collector_url``. Shows one request
per invocation over one connection, a redelivered queue message counted once, eight
concurrent invocations, and an outage that costs no timeout and loses nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from doow_serverless_dev.azure_local import (
    Call,
    InvocationResult,
    LocalFunctionApp,
    http_request,
    queue_message,
    timer_tick,
)
from scripts.demo_common import DEMO_KEY, ROOT, request_json

EXAMPLE = ROOT / "examples" / "azure"


def _show(label: str, result: InvocationResult, app: LocalFunctionApp, collector: str) -> None:
    stats = request_json(f"{collector}/_doow/stats")
    answered = f"{result.duration * 1000:.0f} ms" if result.duration is not None else "-"
    margin = f"{result.margin:.2f} s" if result.margin is not None else "-"
    print(
        f"   {label:<38} {result.status:<8} answered in {answered:>7}, {margin:>7} before the "
        f"{app.timeout:.0f} s timeout | collector: {stats['events_stored']} stored, "
        f"{stats['requests']} requests"
    )


def _python() -> str | None:
    python = os.environ.get("DOOW_AZURE_PYTHON") or str(ROOT / ".venv-azure" / "bin" / "python")
    return python if Path(python).exists() else None


def run_azure_demo(collector_url: str) -> int:
    """Invoke the example through the real worker; returns the events that should be stored."""
    print("\n== Azure Functions: examples/azure under the real library worker (Python 3.13)")
    python = _python()
    if python is None:
        print("   skipped: no .venv-azure (build it with `make azure-venv`, needs python3.13)")
        return 0
    before = request_json(f"{collector_url}/_doow/stats")["events_stored"]
    environment = {
        "DOOW_TRACK_API_KEY": DEMO_KEY,
        "DOOW_TRACK_ENDPOINT": collector_url,
        "DOOW_LICENSE_ID": "lic_demo_azure",
    }
    hello = http_request("GET", "http://localhost:7071/api/hello")
    order = http_request(
        "POST",
        "http://localhost:7071/api/orders",
        body=b'{"items": 3}',
        headers={"content-type": "application/json"},
    )
    with LocalFunctionApp(EXAMPLE, python=python, environment=environment) as app:
        print(f"   worker ready in {app.init_duration or 0:.2f} s: {', '.join(app.functions)}")
        _show("GET /api/hello (1 event)", app.invoke("hello", hello), app, collector_url)
        _show("POST /api/orders, async (2 events)", app.invoke("orders", order), app, collector_url)
        _show(
            "timer housekeeping (1 event)",
            app.invoke("housekeeping", timer_tick()),
            app,
            collector_url,
        )
        for attempt in ("queue message", "the same message redelivered"):
            job = queue_message("rebuild report", message_id="demo-job-1")
            _show(attempt, app.invoke("jobs", job), app, collector_url)
        results = app.invoke_many([Call("hello", hello)] * 8)
        slowest = max(results, key=lambda result: result.duration or 0)
        _show("8 concurrent GET /api/hello (slowest)", slowest, app, collector_url)

    print("   -- the collector hangs every request; functionTimeout is 2 s for this run --")
    outage_environment = {**environment, "AzureFunctionsJobHost__functionTimeout": "00:00:02"}
    with LocalFunctionApp(EXAMPLE, python=python, environment=outage_environment) as app:
        request_json(f"{collector_url}/_doow/faults", "POST", {"then": {"action": "hang"}})
        try:
            _show(
                "GET /api/hello during the outage", app.invoke("hello", hello), app, collector_url
            )
        finally:
            request_json(f"{collector_url}/_doow/faults", "DELETE")
        print("   -- the collector is back --")
        _show("GET /api/hello after the outage", app.invoke("hello", hello), app, collector_url)
        print(f"   invocations past their timeout: {app.timeouts}")
    expected = 1 + 2 + 1 + 1 + 8 + 2
    stored = request_json(f"{collector_url}/_doow/stats")["events_stored"] - before
    print(f"   Azure events: {expected} tracked once each, {stored} stored")
    return expected

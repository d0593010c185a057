"""The Lambda part of `make demo`: examples/lambda under the real runtime client.

The example handler (Powertools Logger + an API Gateway resolver, wrapped in with_lambda)
runs in `python -m awslambdaric`, with this package playing Lambda's Runtime API; its usage
events go to the collector at ``collector_url``. Shows warm starts sharing one connection,
a retried request counted once, and an outage that costs no deadline and loses nothing.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from doow_serverless.lambda_local import InvocationResult, LocalFunction

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "lambda"
DEMO_KEY = "dk_demo_local_0000"


_own_connections = 0  # the demo's own requests to the collector, each on a new connection


def _request(url: str, method: str = "GET", document: object = None) -> Any:
    global _own_connections  # noqa: PLW0603 - a demo's counter
    _own_connections += 1
    data = None if document is None else json.dumps(document).encode()
    request = urllib.request.Request(  # noqa: S310 - the local collector
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        body = answer.read()
    return json.loads(body) if body else None


def _event(name: str) -> bytes:
    return (EXAMPLE / "events" / f"{name}.json").read_bytes()


def _show(label: str, result: InvocationResult, collector_url: str) -> None:
    stats = _request(f"{collector_url}/_doow/stats")
    answered = f"{result.duration * 1000:.0f} ms" if result.duration is not None else "-"
    margin = f"{result.margin * 1000:.0f} ms" if result.margin is not None else "-"
    print(
        f"   {label:<34} {result.status:<8} {'cold' if result.cold_start else 'warm'}  "
        f"answered in {answered:>6}, {margin:>6} before the deadline | collector: "
        f"{stats['events_stored']} stored, {stats['requests']} requests, "
        f"{stats['connections'] - _own_connections} connection(s) from the function"
    )


def run_lambda_demo(collector_url: str) -> int:
    """Invoke the example through the real runtime; returns the events that should be stored."""
    print("\n== AWS Lambda: examples/lambda under the real runtime client (awslambdaric)")
    before = _request(f"{collector_url}/_doow/stats")
    global _own_connections  # noqa: PLW0603
    _own_connections = before["connections"]
    with LocalFunction(
        "app.handler",
        code_dir=EXAMPLE,
        timeout=3.0,
        function_name="DoowExampleFunction",
        environment={
            "DOOW_TRACK_API_KEY": DEMO_KEY,
            "DOOW_TRACK_ENDPOINT": collector_url,
            "DOOW_LICENSE_ID": "lic_demo_lambda",
            "POWERTOOLS_SERVICE_NAME": "doow-demo",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        },
    ) as function:
        _show("GET /hello (1 event)", function.invoke(_event("hello")), collector_url)
        for _ in range(2):
            _show("POST /orders (2 events)", function.invoke(_event("orders")), collector_url)
        for attempt in ("first attempt", "Lambda's retry"):
            result = function.invoke(_event("orders"), request_id="demo-retried-request")
            _show(f"POST /orders, {attempt}", result, collector_url)

        print("   -- the collector hangs every request; the function has a 1 s timeout --")
        _request(f"{collector_url}/_doow/faults", "POST", {"then": {"action": "hang"}})
        try:
            outage = function.invoke(_event("hello"), timeout=1.0)
            _show("GET /hello during the outage", outage, collector_url)
        finally:
            _request(f"{collector_url}/_doow/faults", "DELETE")
        print("   -- the collector is back --")
        _show("GET /hello after the outage", function.invoke(_event("hello")), collector_url)
        print(
            f"   deadline kills needed: {function.kills}; processes started: {function.cold_starts}"
        )
    expected = 1 + 2 * 2 + 2 + 1 + 1
    stored = _request(f"{collector_url}/_doow/stats")["events_stored"] - before["events_stored"]
    print(f"   Lambda events: {expected} tracked once each, {stored} stored")
    return expected

"""The Lambda part of `make demo`: examples/lambda under the real runtime client.

The example handler (Powertools Logger + an API Gateway resolver, wrapped in with_lambda)
runs in `python -m awslambdaric`, with this package playing Lambda's Runtime API; its usage
events go to the collector at ``collector_url``. Shows warm starts sharing one connection,
a retried request counted once, and an outage that costs no deadline and loses nothing.
"""

from __future__ import annotations

from doow_serverless.lambda_local import InvocationResult, LocalFunction
from scripts.demo_common import DEMO_KEY, ROOT, collector_client, request_json

EXAMPLE = ROOT / "examples" / "lambda"


def _event(name: str) -> bytes:
    return (EXAMPLE / "events" / f"{name}.json").read_bytes()


def _show(label: str, result: InvocationResult, collector_url: str) -> None:
    stats = request_json(f"{collector_url}/_doow/stats")
    answered = f"{result.duration * 1000:.0f} ms" if result.duration is not None else "-"
    margin = f"{result.margin * 1000:.0f} ms" if result.margin is not None else "-"
    print(
        f"   {label:<34} {result.status:<8} {'cold' if result.cold_start else 'warm'}  "
        f"answered in {answered:>6}, {margin:>6} before the deadline | collector: "
        f"{stats['events_stored']} stored, {stats['requests']} requests, "
        f"{stats['connections'] - collector_client.connections} connection(s) from the function"
    )


def run_lambda_demo(collector_url: str) -> int:
    """Invoke the example through the real runtime; returns the events that should be stored."""
    print("\n== AWS Lambda: examples/lambda under the real runtime client (awslambdaric)")
    before = request_json(f"{collector_url}/_doow/stats")
    collector_client.connections = before["connections"]
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
        request_json(f"{collector_url}/_doow/faults", "POST", {"then": {"action": "hang"}})
        try:
            outage = function.invoke(_event("hello"), timeout=1.0)
            _show("GET /hello during the outage", outage, collector_url)
        finally:
            request_json(f"{collector_url}/_doow/faults", "DELETE")
        print("   -- the collector is back --")
        _show("GET /hello after the outage", function.invoke(_event("hello")), collector_url)
        print(
            f"   deadline kills needed: {function.kills}; processes started: {function.cold_starts}"
        )
    expected = 1 + 2 * 2 + 2 + 1 + 1
    stored = request_json(f"{collector_url}/_doow/stats")["events_stored"] - before["events_stored"]
    print(f"   Lambda events: {expected} tracked once each, {stored} stored")
    return expected

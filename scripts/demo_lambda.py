"""The Lambda part of `make demo`: examples/lambda under the real runtime client.

The example handler (Powertools Logger + an API Gateway resolver, wrapped in with_lambda)
runs in `python -m awslambdaric`, with this package playing Lambda's Runtime API; its usage
events go to the collector at ``collector_url``. Shows warm starts sharing one connection,
a retried request counted once, an outage that costs no deadline and loses nothing, a
process killed with its events unsent (the next one sends them from the spool), and events
that only a log line kept, sent again by `doow-serverless replay`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from doow_serverless_dev.lambda_local import InvocationResult, LocalFunction
from scripts.demo_common import DEMO_KEY, ROOT, collector_client, request_json

BIN = Path(sys.executable).parent

EXAMPLE = ROOT / "examples" / "lambda"
CODE = EXAMPLE / "function"  # what sam build packages


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


def _function(collector_url: str, **environment: str) -> LocalFunction:
    return LocalFunction(
        "app.handler",
        code_dir=CODE,
        timeout=3.0,
        function_name="DoowExampleFunction",
        environment={
            "DOOW_TRACK_API_KEY": DEMO_KEY,
            "DOOW_TRACK_ENDPOINT": collector_url,
            "DOOW_LICENSE_ID": "lic_demo_lambda",
            "POWERTOOLS_SERVICE_NAME": "doow-demo",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            **environment,
        },
    )


def _faults(collector_url: str, plan: dict[str, object] | None) -> None:
    if plan is None:
        request_json(f"{collector_url}/_doow/faults", "DELETE")
    else:
        request_json(f"{collector_url}/_doow/faults", "POST", plan)


def run_lambda_demo(collector_url: str) -> int:
    """Invoke the example through the real runtime; returns the events that should be stored."""
    print("\n== AWS Lambda: examples/lambda under the real runtime client (awslambdaric)")
    before = request_json(f"{collector_url}/_doow/stats")
    collector_client.connections = before["connections"]
    with _function(collector_url) as function:
        _show("GET /hello (1 event)", function.invoke(_event("hello")), collector_url)
        for _ in range(2):
            _show("POST /orders (2 events)", function.invoke(_event("orders")), collector_url)
        for attempt in ("first attempt", "Lambda's retry"):
            result = function.invoke(_event("orders"), request_id="demo-retried-request")
            _show(f"POST /orders, {attempt}", result, collector_url)

        print("   -- the collector hangs every request; the function has a 1 s timeout --")
        _faults(collector_url, {"then": {"action": "hang"}})
        try:
            outage = function.invoke(_event("hello"), timeout=1.0)
            _show("GET /hello during the outage", outage, collector_url)
        finally:
            _faults(collector_url, None)
        print("   -- the collector is back --")
        _show("GET /hello after the outage", function.invoke(_event("hello")), collector_url)
        print(
            f"   deadline kills needed: {function.kills}; processes started: {function.cold_starts}"
        )

        print("   -- the collector hangs again, and then the process is killed (a crash) --")
        _faults(collector_url, {"then": {"action": "hang"}})
        try:
            _show(
                "GET /hello, then SIGKILL",
                function.invoke(_event("hello"), timeout=1.0),
                collector_url,
            )
        finally:
            _faults(collector_url, None)
        function.stop()  # /tmp, and the spool in it, stays with the execution environment
        result = function.invoke(_event("hello"))
        _show("GET /hello, a new process", result, collector_url)
        print("   (the new process sent the killed one's event first, from the spool)")
    expected = 1 + 2 * 2 + 2 + 1 + 1 + 2
    expected += _log_line_and_replay(collector_url)
    stored = request_json(f"{collector_url}/_doow/stats")["events_stored"] - before["events_stored"]
    print(f"   Lambda events: {expected} tracked once each, {stored} stored")
    return expected


def _log_line_and_replay(collector_url: str) -> int:
    """An event only a log line kept: no spool, the endpoint down, the sandbox reclaimed."""
    print("   -- no spool (DOOW_TRACK_SPOOL_DIR=off), every request answered 503 --")
    log = ROOT / ".demo" / "cloudwatch.log"
    _faults(collector_url, {"then": {"status": 503}})
    try:
        with _function(collector_url, DOOW_TRACK_SPOOL_DIR="off") as function:
            _show("GET /hello, endpoint down", function.invoke(_event("hello")), collector_url)
            function.stop()  # reclaimed: the event survives only in the log
            log.write_text("".join(line + "\n" for line in function.output), encoding="utf-8")
    finally:
        _faults(collector_url, None)
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if "doow_unsent" in line]
    print(f"   the function's log holds {len(lines)} doow_unsent line(s); replaying it twice:")
    for _ in range(2):
        replay = subprocess.run(
            [
                str(BIN / "doow-serverless"),
                "replay",
                "--log",
                str(log),
                "--endpoint",
                collector_url,
            ],
            env={**os.environ, "DOOW_TRACK_API_KEY": DEMO_KEY},
            capture_output=True,
            text=True,
            check=False,
        )
        stats = request_json(f"{collector_url}/_doow/stats")
        print(
            f"   doow-serverless replay --log {log.relative_to(ROOT)}: exit {replay.returncode}, "
            f"{replay.stderr.strip().splitlines()[-1]} | collector: {stats['events_stored']} "
            f"stored, {stats['duplicates']} duplicates acknowledged"
        )
    return 1

"""The forwarder part of `make demo`: function → log line → forwarder → collector, on AWS.

The example function (examples/lambda under the real runtime client) runs with its spool
off while the collector answers 503: the only copy of its event is the line the SDK wrote
in its log. That log reaches the forwarder (``doow_serverless.forwarders.aws.handler``,
under the real runtime client too) as CloudWatch Logs delivers a subscription filter's
matches: ``{"awslogs": {"data": base64(gzip(JSON))}}``. While Doow is down the forwarder
fails, as Lambda needs it to, so that Lambda retries it; the retry, Doow back, delivers.
Nobody runs ``replay``.
"""

from __future__ import annotations

import json

from doow_serverless_dev.lambda_local import InvocationResult, LocalFunction, subscription_event
from scripts.demo_common import DEMO_KEY, ROOT, request_json

EXAMPLE = ROOT / "examples" / "lambda"
CODE = EXAMPLE / "function"  # what sam build packages
FORWARDER_DIR = ROOT / "examples" / "lambda_forwarder"


def _environment(collector_url: str) -> dict[str, str]:
    return {"DOOW_TRACK_API_KEY": DEMO_KEY, "DOOW_TRACK_ENDPOINT": collector_url}


def _stats(collector_url: str) -> str:
    stats = request_json(f"{collector_url}/_doow/stats")
    return f"collector: {stats['events_stored']} stored, {stats['duplicates']} duplicates"


def _faults(collector_url: str, plan: dict[str, object] | None) -> None:
    if plan is None:
        request_json(f"{collector_url}/_doow/faults", "DELETE")
    else:
        request_json(f"{collector_url}/_doow/faults", "POST", plan)


def _outcome(result: InvocationResult) -> str:
    if result.ok:
        return f"success: {json.dumps(result.payload)}"
    message = str((result.payload or {}).get("errorMessage", ""))
    return f"{result.status} ({result.error_type}): {message[:110]}..."


def run_forwarder_demo(collector_url: str) -> int:
    """Returns the events that should be stored."""
    print("\n== The AWS forwarder: function -> log line -> forwarder -> collector")
    print("   -- Doow answers 503; the example function's spool is off --")
    _faults(collector_url, {"then": {"status": 503}})
    try:
        with LocalFunction(
            "app.handler",
            code_dir=CODE,
            timeout=3.0,
            function_name="DoowExampleFunction",
            environment={
                **_environment(collector_url),
                "DOOW_LICENSE_ID": "lic_demo_forwarder",
                "DOOW_TRACK_SPOOL_DIR": "off",
                "POWERTOOLS_LOG_LEVEL": "ERROR",
            },
        ) as function:
            hello = function.invoke((EXAMPLE / "events" / "hello.json").read_bytes())
            log = [line + "\n" for line in function.output]
        print(f"   GET /hello: {hello.status}, {_stats(collector_url)}")
        for line in log:
            if "doow_unsent" in line:
                print(f"   its log: {line.strip()[:100]}...")
        payload = subscription_event(log, log_group="/aws/lambda/DoowExampleFunction")
        size = len(json.dumps(payload))
        print(f"   CloudWatch Logs -> forwarder: {len(log)} log events, {size} bytes (base64 gzip)")
        with LocalFunction(
            "doow_serverless.forwarders.aws.handler",
            code_dir=FORWARDER_DIR,
            timeout=5.0,
            function_name="DoowForwarderFunction",
            environment=_environment(collector_url),
        ) as forwarder:
            failed = forwarder.invoke(payload)
            print(f"   forwarder, Doow still down: {_outcome(failed)}")
            _faults(collector_url, None)
            print("   -- Doow is back; Lambda retries the failed asynchronous invocation --")
            retried = forwarder.invoke(payload)
            print(f"   forwarder, Lambda's retry: {_outcome(retried)} | {_stats(collector_url)}")
            again = forwarder.invoke(payload)
            print(f"   the same delivery once more: {_outcome(again)} | {_stats(collector_url)}")
    finally:
        _faults(collector_url, None)
    if not retried.ok:
        raise SystemExit("the forwarder did not deliver on Lambda's retry")
    return 1

"""The Vercel part of `make demo`: examples/vercel under Vercel's real Python runtime.

The example (a Flask app wrapped in with_vercel) is served by `vercel_runtime.vc_init` in
the Python 3.12 virtualenv `.venv-vercel`, with this package playing Vercel's platform
side over the runtime's IPC socket; its usage events go to the collector at
``collector_url``. Shows the response arriving before the flush (wait_until), warm
requests sharing one connection, the same request id counted once, and an outage that
costs no deadline and loses nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from doow_serverless_dev.vercel_local import VercelFunction, VercelResponse
from scripts.demo_common import DEMO_KEY, ROOT, collector_client, request_json

EXAMPLE = ROOT / "examples" / "vercel"
ORDER = b'{"items": 2}'


def vercel_python() -> Path:
    return Path(os.environ.get("DOOW_VERCEL_PYTHON") or ROOT / ".venv-vercel" / "bin" / "python")


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _show(label: str, response: VercelResponse, collector_url: str) -> None:
    stats = request_json(f"{collector_url}/_doow/stats")
    print(
        f"   {label:<36} {response.status or 'timeout'!s:<4} "
        f"{'cold' if response.cold_start else 'warm'}  response in {_ms(response.duration):>6},"
        f" flush after it {_ms(response.after_response):>6}, ended "
        f"{_ms(response.margin):>7} before the deadline | collector: "
        f"{stats['events_stored']} stored, {stats['requests']} requests, "
        f"{stats['connections'] - collector_client.connections} connection(s) from the function"
    )


def _order(function: VercelFunction, vercel_id: str | None = None) -> VercelResponse:
    return function.request(
        "POST",
        "/api/orders",
        body=ORDER,
        headers={"content-type": "application/json"},
        vercel_id=vercel_id,
    )


def run_vercel_demo(collector_url: str) -> int:
    """Serve the example through the real runtime; returns the events that should be stored."""
    print("\n== Vercel: examples/vercel under the real Python runtime (vercel-runtime)")
    python = vercel_python()
    if not python.exists():
        print(f"   skipped: no {python}; `make demo` builds it (make vercel-venv)")
        return 0
    before = request_json(f"{collector_url}/_doow/stats")
    collector_client.connections = before["connections"]
    with VercelFunction(
        "api/index.py",
        project_dir=EXAMPLE,
        python=python,
        max_duration=10.0,
        environment={
            "DOOW_TRACK_API_KEY": DEMO_KEY,
            "DOOW_TRACK_ENDPOINT": collector_url,
            "DOOW_LICENSE_ID": "lic_demo_vercel",
        },
    ) as function:
        _show("GET /api/hello (1 event)", function.request("GET", "/api/hello"), collector_url)
        for _ in range(2):
            _show("POST /api/orders (2 events)", _order(function), collector_url)
        for attempt in ("first delivery", "same x-vercel-id"):
            response = _order(function, vercel_id="iad1::demo1-1700000000000-0123456789ab")
            _show(f"POST /api/orders, {attempt}", response, collector_url)

        print("   -- the collector takes 300 ms per request: the response does not wait --")
        request_json(f"{collector_url}/_doow/faults", "POST", {"latency_ms": 300})
        try:
            _show(
                "GET /api/hello, slow collector",
                function.request("GET", "/api/hello"),
                collector_url,
            )
        finally:
            request_json(f"{collector_url}/_doow/faults", "DELETE")

        print("   -- the collector hangs every request; this request has 1.5 s --")
        request_json(f"{collector_url}/_doow/faults", "POST", {"then": {"action": "hang"}})
        try:
            outage = function.request("GET", "/api/hello", deadline=1.5)
            _show("GET /api/hello during the outage", outage, collector_url)
        finally:
            request_json(f"{collector_url}/_doow/faults", "DELETE")
        print("   -- the collector is back --")
        _show(
            "GET /api/hello after the outage", function.request("GET", "/api/hello"), collector_url
        )
        print(
            f"   deadline kills needed: {function.kills}; instances started: {function.cold_starts}"
        )
    expected = 1 + 2 * 2 + 2 + 1 + 1 + 1
    stored = request_json(f"{collector_url}/_doow/stats")["events_stored"] - before["events_stored"]
    print(f"   Vercel events: {expected} tracked once each, {stored} stored")
    return expected

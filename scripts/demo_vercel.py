"""The Vercel part of `make demo`: examples/vercel under Vercel's real Python runtime.

The example (a Flask app wrapped in with_vercel) is served by `vercel_runtime.vc_init` in
the Python 3.12 virtualenv `.venv-vercel`, with this package playing Vercel's platform
side over the runtime's IPC socket; its usage events go to the collector at
``collector_url``. Shows the response arriving before the flush (wait_until), warm
requests sharing one connection, the same request id counted once, and an outage that
costs no deadline and loses nothing.
"""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path
from typing import Any

from doow_serverless.vercel_local import VercelFunction, VercelResponse

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "vercel"
DEMO_KEY = "dk_demo_local_0000"
ORDER = b'{"items": 2}'

_own_connections = 0  # the demo's own requests to the collector, each on a new connection


def vercel_python() -> Path:
    return Path(os.environ.get("DOOW_VERCEL_PYTHON") or ROOT / ".venv-vercel" / "bin" / "python")


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


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def _show(label: str, response: VercelResponse, collector_url: str) -> None:
    stats = _request(f"{collector_url}/_doow/stats")
    print(
        f"   {label:<36} {response.status or 'timeout'!s:<4} "
        f"{'cold' if response.cold_start else 'warm'}  response in {_ms(response.duration):>6},"
        f" flush after it {_ms(response.after_response):>6}, ended "
        f"{_ms(response.margin):>7} before the deadline | collector: "
        f"{stats['events_stored']} stored, {stats['requests']} requests, "
        f"{stats['connections'] - _own_connections} connection(s) from the function"
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
    before = _request(f"{collector_url}/_doow/stats")
    global _own_connections  # noqa: PLW0603
    _own_connections = before["connections"]
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
        _request(f"{collector_url}/_doow/faults", "POST", {"latency_ms": 300})
        try:
            _show(
                "GET /api/hello, slow collector",
                function.request("GET", "/api/hello"),
                collector_url,
            )
        finally:
            _request(f"{collector_url}/_doow/faults", "DELETE")

        print("   -- the collector hangs every request; this request has 1.5 s --")
        _request(f"{collector_url}/_doow/faults", "POST", {"then": {"action": "hang"}})
        try:
            outage = function.request("GET", "/api/hello", deadline=1.5)
            _show("GET /api/hello during the outage", outage, collector_url)
        finally:
            _request(f"{collector_url}/_doow/faults", "DELETE")
        print("   -- the collector is back --")
        _show(
            "GET /api/hello after the outage", function.request("GET", "/api/hello"), collector_url
        )
        print(
            f"   deadline kills needed: {function.kills}; instances started: {function.cold_starts}"
        )
    expected = 1 + 2 * 2 + 2 + 1 + 1 + 1
    stored = _request(f"{collector_url}/_doow/stats")["events_stored"] - before["events_stored"]
    print(f"   Vercel events: {expected} tracked once each, {stored} stored")
    return expected

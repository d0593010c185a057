"""A Flask (WSGI) function: /track?n=2 tracks two events; /stream tracks while it streams."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from flask import Flask, Response, request

from doow_serverless import DoowTracker, with_vercel

tracker = DoowTracker()
LICENSE_ID = os.environ.get("DOOW_LICENSE_ID", "lic_vercel_tests")

app = with_vercel(tracker)(Flask(__name__))


@app.get("/track")
def track() -> str:
    count = request.args.get("n", 1, type=int)
    time.sleep(request.args.get("sleep_ms", 0, type=int) / 1000)
    for _ in range(count):
        tracker.track("api_calls", 1, LICENSE_ID, attribution={"kind": "wsgi"})
    return f"tracked {count}"


@app.get("/stream")
def stream() -> Response:
    count = request.args.get("n", 3, type=int)

    def chunks() -> Iterator[str]:
        for number in range(count):
            tracker.track("chunks", 1, LICENSE_ID, attribution={"kind": "wsgi"})
            yield f"chunk {number}\n"

    return Response(chunks(), mimetype="text/plain")

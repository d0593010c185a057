"""A BaseHTTPRequestHandler function: GET /?n=2 tracks two events."""

from __future__ import annotations

import os
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from doow_serverless import DoowTracker, with_vercel

tracker = DoowTracker()
LICENSE_ID = os.environ.get("DOOW_LICENSE_ID", "lic_vercel_tests")


@with_vercel(tracker)
class handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        count = int(query.get("n", ["1"])[0])
        time.sleep(int(query.get("sleep_ms", ["0"])[0]) / 1000)
        for _ in range(count):
            tracker.track("api_calls", 1, LICENSE_ID, attribution={"kind": "handler"})
        body = f"tracked {count}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

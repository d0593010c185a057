"""What the demo's parts share: the demo key and a small JSON client for the collector."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO_KEY = "dk_demo_local_0000"


class CollectorClient:
    """The demo's own requests to the local collector, each on a new connection (counted,
    so a part can tell its function's connections from the demo's own)."""

    def __init__(self) -> None:
        self.connections = 0

    def request(self, url: str, method: str = "GET", document: object = None) -> Any:
        self.connections += 1
        data = None if document is None else json.dumps(document).encode()
        request = urllib.request.Request(  # noqa: S310 - the local collector
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            body = answer.read()
        return json.loads(body) if body else None


collector_client = CollectorClient()
request_json = collector_client.request

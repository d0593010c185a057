"""One raw httpx POST of a one-event batch over a kept-alive connection: the yardstick."""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import httpx

client = httpx.Client()
URL = os.environ["DOOW_TRACK_ENDPOINT"] + "/telemetry/events"
HEADERS = {
    "Authorization": f"Bearer {os.environ['DOOW_TRACK_API_KEY']}",
    "Content-Type": "application/json",
}


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    body = {
        "batch_id": str(uuid.uuid4()),
        "sdk_version": "raw",
        "events": [
            {
                "event_id": str(uuid.uuid4()),
                "license_id": "lic_bench",
                "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "source_system": "sdk",
                "kind": "USAGE",
                "measurements": [{"metric_name": "api_calls", "quantity": 1}],
            }
        ],
    }
    answer = client.post(URL, content=json.dumps(body).encode(), headers=HEADERS, timeout=10)
    return {"statusCode": answer.status_code}

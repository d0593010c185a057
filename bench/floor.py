"""The floor: the least a client must do to put the same events on the wire.

No validation, no queue bound, no durability, no deadline, no byte limit per batch: each
event is a tuple appended to a list; a batch of 500 becomes one JSON document (ids drawn
in one call to the OS, one ``strftime`` per distinct second), encoded in one call of the
standard library's ``json`` or of orjson, gzipped at the SDK's level, and POSTed over one
kept-alive ``http.client`` connection. What an SDK spends beyond this is its own.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import zlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from doow_serverless._core.constants import GZIP_LEVEL

BATCH = 500
Encode = Callable[[Any], bytes]


def json_encoder() -> Encode:
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

    def encode(document: Any) -> bytes:
        return encoder.encode(document).encode()

    return encode


def orjson_encoder() -> Encode:
    import orjson

    dumps: Encode = orjson.dumps
    return dumps


class FloorClient:
    def __init__(self, url: str, key: str, encode: Encode) -> None:
        parts = urlsplit(url)
        self._connection = http.client.HTTPConnection(parts.hostname or "", parts.port)
        self._path = "/telemetry/events"
        self._headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        self._encode = encode
        self.events: list[tuple[Any, ...]] = []
        self._second = -1
        self._prefix = ""

    def track(
        self, metric: str, quantity: float, license_id: str, unit: str, attribution: dict[str, Any]
    ) -> None:
        self.events.append((metric, quantity, license_id, unit, attribution, time.time()))

    def flush(self) -> int:
        """Send everything tracked, 500 events a request; the events sent."""
        events, self.events = self.events, []
        for start in range(0, len(events), BATCH):
            self._send(events[start : start + BATCH])
        return len(events)

    def _timestamp(self, moment: float) -> str:
        second = int(moment)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((moment - second) * 1000):03d}Z"

    def _send(self, events: list[tuple[Any, ...]]) -> None:
        hexes = os.urandom(16 * (len(events) + 1)).hex()
        ids = [
            f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
            for h in (hexes[i : i + 32] for i in range(0, len(hexes), 32))
        ]
        document = {
            "batch_id": ids[-1],
            "sdk_version": "floor",
            "events": [
                {
                    "event_id": event_id,
                    "license_id": license_id,
                    "occurred_at": self._timestamp(moment),
                    "source_system": "sdk",
                    "kind": "USAGE",
                    "unit": unit,
                    "attribution": attribution,
                    "measurements": [{"metric_name": metric, "quantity": quantity}],
                }
                for event_id, (metric, quantity, license_id, unit, attribution, moment) in zip(
                    ids, events, strict=False
                )
            ],
        }
        body = zlib.compress(self._encode(document), GZIP_LEVEL, wbits=31)
        self._connection.request("POST", self._path, body=body, headers=self._headers)
        answer = self._connection.getresponse()
        answer.read()
        if answer.status // 100 != 2:
            raise RuntimeError(f"the collector answered {answer.status}")

    def close(self) -> None:
        self._connection.close()

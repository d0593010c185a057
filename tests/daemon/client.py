"""A client process of the daemon; prints one JSON line with what it did, last.

    python tests/daemon/client.py ours|official|raw ENDPOINT NAME COUNT [--key KEY] [--batch N]

Each event's license id is ``lic-NAME-N``, so the collector's rows say which event each is,
whatever its id: a row twice is an event counted twice.

- ``ours``: DoowTracker in a long-running process (background sending every 0.5 s); it
  goes on until everything is sent (at most 60 s), then shutdown().
- ``official``: doow-track 0.1.2 from PyPI, its defaults; waits for its sending threads,
  then shutdown().
- ``raw``: batches of BATCH events posted one at a time with fixed ids; a batch not
  acknowledged (an error, a reset) is posted again, the same bytes, until it is. Reports the
  ids of every acknowledged batch.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

KEY = "dk_client_of_the_daemon"


def ours(endpoint: str, name: str, count: int, key: str = KEY) -> dict[str, Any]:
    from doow_serverless import DoowTracker

    errors: list[str] = []
    tracker = DoowTracker(
        key,
        endpoint=endpoint,
        flush_interval=0.5,
        environ={},
        on_error=lambda error: errors.append(str(error)),
    )
    for n in range(count):
        tracker.track("api_calls", 1, f"lic-{name}-{n}", attribution={"client": name})
        if n % 500 == 499:
            time.sleep(0.01)  # traffic spread over time, not one burst
    # A long-running program: it goes on while the background thread sends.
    deadline = time.monotonic() + 60
    while tracker.stats().pending and time.monotonic() < deadline:
        time.sleep(0.1)
    result = tracker.shutdown(timeout=30)
    stats = tracker.stats()
    return {
        "tracked": stats.tracked,
        "delivered": stats.delivered,
        "dropped": stats.dropped,
        "pending": result.pending,
        "persisted": stats.persisted,
        "errors": errors[:5],
    }


def official(endpoint: str, name: str, count: int) -> dict[str, Any]:
    import doow_track

    errors: list[str] = []
    tracker = doow_track.Tracker(
        KEY,
        doow_track.TrackerOptions(
            endpoint=endpoint, on_error=lambda error: errors.append(str(error))
        ),
    )
    for n in range(count):
        tracker.track(
            doow_track.TrackEvent(metric="api_calls", quantity=1, license_id=f"lic-{name}-{n}")
        )
        if n % 500 == 499:
            time.sleep(0.01)
    # Its flushes run on threads of their own, which neither flush() nor shutdown() waits
    # for, and shutdown() closes the HTTP client under them (their batches are dropped). A
    # program that wants its events sent waits for them first (the main thread and the
    # periodic flusher are the two left).
    tracker.flush()
    deadline = time.monotonic() + 30
    while threading.active_count() > 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    tracker.shutdown()
    return {"tracked": count, "errors": errors[:5]}


def raw(endpoint: str, name: str, count: int, batch: int) -> dict[str, Any]:
    url = urlsplit(endpoint)
    acknowledged: list[str] = []
    attempts = 0
    for start in range(0, count, batch):
        events: list[dict[str, Any]] = [
            {
                "event_id": str(uuid.uuid4()),
                "license_id": f"lic-{name}-{n}",
                "occurred_at": "2026-11-22T10:15:30.123Z",
                "kind": "USAGE",
                "measurements": [{"metric_name": "api_calls", "quantity": 1}],
            }
            for n in range(start, min(start + batch, count))
        ]
        body = json.dumps({"batch_id": str(uuid.uuid4()), "events": events}).encode()
        while True:
            attempts += 1
            try:
                connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
                connection.request(
                    "POST",
                    "/telemetry/events",
                    body,
                    {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
                )
                status = connection.getresponse().status
                connection.close()
            except OSError:
                status = 0
            if status == 202:
                acknowledged += [str(event["event_id"]) for event in events]
                break
            time.sleep(0.05)
    return {"tracked": count, "acknowledged": acknowledged, "attempts": attempts}


def main() -> None:
    kind, endpoint, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    options = dict(zip(sys.argv[5::2], sys.argv[6::2], strict=True))
    if kind == "ours":
        report = ours(endpoint, name, count, options.get("--key", KEY))
    elif kind == "official":
        report = official(endpoint, name, count)
    else:
        report = raw(endpoint, name, count, int(options.get("--batch", "50")))
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()

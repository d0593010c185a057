"""doow-track 0.1.2 doing the same job: one event, flushed before the handler returns."""

from __future__ import annotations

import os
from typing import Any

import doow_track

tracker = doow_track.Tracker(os.environ["DOOW_TRACK_API_KEY"])


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    tracker.track(doow_track.TrackEvent(metric="api_calls", quantity=1, license_id="lic_bench"))
    tracker.flush()
    return {"statusCode": 200}

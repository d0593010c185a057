from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from doow_serverless import DoowTracker

OFFLINE_KEY = "dk_test_offline_0000"

MakeTracker = Callable[..., DoowTracker]


@pytest.fixture
def offline_tracker() -> Iterator[MakeTracker]:
    """Trackers that never reach a server (port 9 refuses), shut down when the test ends."""
    made: list[DoowTracker] = []

    def make(**options: Any) -> DoowTracker:
        options.setdefault("environ", {})
        tracker = DoowTracker(OFFLINE_KEY, endpoint="http://127.0.0.1:9", **options)
        made.append(tracker)
        return tracker

    yield make
    for tracker in made:
        tracker.shutdown(timeout=0)

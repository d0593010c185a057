from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from doow_serverless import DoowError, DoowTracker
from doow_serverless_dev.collector import Collector

KEY = "dk_test_delivery_5f3a9c"

MakeTracker = Callable[..., DoowTracker]


class Reported(list[DoowError]):
    """Errors passed to on_error, in order."""

    def kinds(self) -> list[str]:
        return [type(error).__name__ for error in self]


@pytest.fixture
def reported() -> Reported:
    return Reported()


@pytest.fixture
def make_tracker(collector: Collector, reported: Reported) -> Iterator[MakeTracker]:
    """Trackers pointed at the test's collector, as a long-running process unless told otherwise."""
    made: list[DoowTracker] = []

    def make(**options: Any) -> DoowTracker:
        options.setdefault("endpoint", collector.url)
        options.setdefault("environ", {"AWS_LAMBDA_FUNCTION_NAME": "test"})
        options.setdefault("on_error", reported.append)
        tracker = DoowTracker(options.pop("api_key", KEY), **options)
        made.append(tracker)
        return tracker

    yield make
    for tracker in made:
        tracker.shutdown(timeout=0)


def track_many(tracker: DoowTracker, count: int, *, license_id: str = "lic_1") -> None:
    for n in range(count):
        tracker.track("api_calls", 1, license_id, attribution={"n": n})

"""Fixtures for running handlers under the real Lambda runtime client, against a collector."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from doow_serverless import DoowTracker
from doow_serverless_dev.collector import Collector
from doow_serverless_dev.lambda_local import LocalFunction

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = REPO / "examples" / "lambda"
EVENTS_DIR = EXAMPLE_DIR / "events"
FUNCTIONS_DIR = Path(__file__).resolve().parent / "functions"
TEST_KEY = "dk_lambda_tests_0000"

MakeFunction = Callable[..., LocalFunction]
# Passed to in-process trackers: they behave as on Lambda (no background flusher thread).
LAMBDA_ENVIRON = {"AWS_LAMBDA_FUNCTION_NAME": "unit-tests"}


def example_event(name: str) -> bytes:
    return (EVENTS_DIR / f"{name}.json").read_bytes()


def lambda_context(remaining_s: float = 3.0, request_id: str | None = None) -> Any:
    """The runtime client's own context class, with a deadline ``remaining_s`` from now."""
    from awslambdaric.lambda_context import LambdaContext

    return LambdaContext(
        request_id or str(uuid.uuid4()),
        None,
        None,
        int((time.time() + remaining_s) * 1000),
        "arn:aws:lambda:us-east-1:000000000000:function:unit-tests",
    )


@pytest.fixture
def tracker(lambda_collector: Collector) -> Iterator[DoowTracker]:
    tracker = DoowTracker(TEST_KEY, endpoint=lambda_collector.url, environ=LAMBDA_ENVIRON)
    yield tracker
    tracker.shutdown(timeout=1.0)


@pytest.fixture
def lambda_collector() -> Iterator[Collector]:
    with Collector() as collector:
        yield collector


@pytest.fixture
def make_function(lambda_collector: Collector) -> Iterator[MakeFunction]:
    """Build a LocalFunction whose usage events go to ``lambda_collector``; stopped after."""
    made: list[LocalFunction] = []

    def make(
        handler: str = "app.handler",
        *,
        code_dir: Path = EXAMPLE_DIR,
        timeout: float = 3.0,
        environment: dict[str, str] | None = None,
        collector: Collector | None = None,
        **options: Any,
    ) -> LocalFunction:
        function = LocalFunction(
            handler,
            code_dir=code_dir,
            timeout=timeout,
            environment={
                "DOOW_TRACK_API_KEY": TEST_KEY,
                "DOOW_TRACK_ENDPOINT": (collector or lambda_collector).url,
                "DOOW_LICENSE_ID": "lic_example",
                "POWERTOOLS_SERVICE_NAME": "doow-tests",
                **(environment or {}),
            },
            **options,
        )
        made.append(function)
        return function

    yield make
    for function in made:
        function.stop()

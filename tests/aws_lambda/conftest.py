"""Fixtures for running handlers under the real Lambda runtime client, against a collector.

The example runs as ``sam build`` built it (``make example-lambda``): from
``.aws-sam/build/DoowExampleFunction`` with the built template's settings, in a Python 3.12
that has the runtime client and nothing else (``.venv-lambda``, Lambda's ``/var/runtime``).
The test handlers in ``functions/`` run from the source tree, in the dev virtualenv.
"""

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
from doow_serverless_dev.lambda_local._template import FunctionSpec, read_functions

from ..examples_built import ensure, venv_python

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DIR = REPO / "examples" / "lambda" / "function"
BUILT_TEMPLATE = REPO / ".aws-sam" / "build" / "template.yaml"
RUNTIME_PYTHON = venv_python(".venv-lambda")
EVENTS_DIR = REPO / "examples" / "lambda" / "events"
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


# The template also holds the forwarder (DoowForwarderFunction), on by default.
EXAMPLE_FUNCTION = "DoowExampleFunction"


def built_example() -> FunctionSpec:
    """The example's function in the template ``sam build`` wrote (its CodeUri: the build)."""
    ensure("example-lambda")
    functions = {spec.logical_id: spec for spec in read_functions(BUILT_TEMPLATE)}
    return functions[EXAMPLE_FUNCTION]


@pytest.fixture
def make_function(lambda_collector: Collector) -> Iterator[MakeFunction]:
    """Build a LocalFunction whose usage events go to ``lambda_collector``; stopped after.

    Without a handler: the example as built, under the runtime client alone.
    """
    made: list[LocalFunction] = []

    def make(
        handler: str | None = None,
        *,
        code_dir: Path | None = None,
        timeout: float = 3.0,
        environment: dict[str, str] | None = None,
        collector: Collector | None = None,
        **options: Any,
    ) -> LocalFunction:
        settings: dict[str, str] = {}
        if handler is None:
            built = built_example()
            handler, code_dir = str(built.handler), built.code_dir
            options = {"python": str(RUNTIME_PYTHON), "runtime": built.runtime, **options}
            # The template's variables; /var/task is read-only on Lambda: no .pyc written.
            settings = {**built.environment, "PYTHONDONTWRITEBYTECODE": "1"}
        assert code_dir is not None, "a handler of the tests' own comes with its code_dir"
        function = LocalFunction(
            handler,
            code_dir=code_dir,
            timeout=timeout,
            environment={
                **settings,
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

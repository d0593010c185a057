"""examples/vercel as ``vercel build`` built it (``make example-vercel``), run as Vercel runs it.

The ``.func`` folder is served as built: Vercel's generated bootstrap (the handler in its
``.vc-config.json``) loads the runtime and the dependencies vendored in ``_vendor``, in a
bare Python 3.12 with the config's environment. The test plays Vercel's side as in
test_runtime.py; the events go to the real collector.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from doow_serverless_dev.collector import Collector
from doow_serverless_dev.vercel_local import BuildError, BuiltVercelFunction, read_build

from ..examples_built import ensure
from .conftest import EXAMPLE_DIR, TEST_KEY

pytestmark = pytest.mark.timeout(120)

FUNCTION_DIR = EXAMPLE_DIR / ".vercel" / "output" / "functions" / "api" / "index.func"


@pytest.fixture(scope="session")
def built_function() -> Path:
    ensure("example-vercel")
    return FUNCTION_DIR


@pytest.fixture(scope="session")
def python312() -> str:
    from scripts.examples.tools import interpreter

    python = interpreter("3.12")
    assert python is not None, "no python3.12 (set PYTHON312)"
    return str(python)


@pytest.fixture
def function(
    built_function: Path, python312: str, vercel_collector: Collector
) -> Iterator[BuiltVercelFunction]:
    environment = {"DOOW_TRACK_API_KEY": TEST_KEY, "DOOW_TRACK_ENDPOINT": vercel_collector.url}
    with BuiltVercelFunction(built_function, python=python312, environment=environment) as built:
        yield built


def metrics(collector: Collector) -> Counter[str]:
    quantities = Counter[str]()
    for event in collector.events(limit=100):
        quantities[event["measurements"][0]["metric_name"]] += event["measurements"][0]["quantity"]
    return quantities


def test_the_build_is_vercels_bootstrap_with_everything_vendored(
    built_function: Path, python312: str
) -> None:
    build = read_build(built_function)
    assert build.handler == "vc__handler__python.vc_handler"
    assert build.runtime == "python3.12"
    assert build.max_duration == 10  # vercel.json's maxDuration
    assert build.environment["PYTHONPATH"] == "_vendor"

    # Run as the platform runs it, everything the app imports comes from the folder ...
    probe = "import flask, doow_serverless, vercel.functions, vercel_runtime; print(flask.__file__,"
    probe += " doow_serverless.__file__, vercel.functions.__file__, vercel_runtime.__file__)"
    found = subprocess.run(
        [python312, "-c", probe],
        cwd=built_function,
        env={"PATH": os.environ["PATH"], **build.environment},
        capture_output=True,
        text=True,
        check=True,
    )
    vendor = str(built_function / "_vendor") + os.sep
    assert all(path.startswith(vendor) for path in found.stdout.split()), found.stdout
    # ... and the interpreter alone has none of it.
    bare = subprocess.run(
        [python312, "-c", "import doow_serverless"], capture_output=True, check=False
    )
    assert bare.returncode != 0


def test_a_tracked_event_reaches_the_collector_once(
    function: BuiltVercelFunction, vercel_collector: Collector
) -> None:
    hello = function.request("GET", "/api/hello")
    order = function.request(
        "POST", "/api/orders", body=b'{"items": 3}', headers={"content-type": "application/json"}
    )

    assert hello.ok and hello.json() == {"message": "hello from Vercel"}
    assert order.ok and order.status == 201
    assert hello.cold_start and not order.cold_start  # one warm instance served both
    assert metrics(vercel_collector) == {"api_calls": 2, "order_items": 3}
    assert vercel_collector.stats()["duplicates"] == 0


def test_a_request_that_raises_still_sends_its_event_once(
    function: BuiltVercelFunction, vercel_collector: Collector
) -> None:
    failed = function.request("GET", "/api/fail")

    assert failed.status == 500
    assert failed.ended_at is not None and not failed.timed_out
    assert "the upstream this request needs is down" in function.log_text()
    assert metrics(vercel_collector) == {"api_calls": 1}
    assert vercel_collector.stats()["duplicates"] == 0


def test_a_hanging_endpoint_costs_no_deadline_and_loses_nothing(
    function: BuiltVercelFunction, vercel_collector: Collector
) -> None:
    assert function.request("GET", "/api/hello").ok  # a first connection, healthy
    vercel_collector.set_faults({"then": {"action": "hang"}})

    hung = function.request("GET", "/api/hello")

    # maxDuration is 10 s; the flush gives up after its 2 s budget, long before.
    assert hung.ok, hung.error
    assert hung.margin is not None and hung.margin > 5.0
    assert function.kills == 0

    vercel_collector.clear_faults()
    recovered = function.request("GET", "/api/hello")

    assert recovered.ok and not recovered.cold_start
    stored = Counter(event["event_id"] for event in vercel_collector.events(limit=100))
    assert len(stored) == 3  # the first, the one kept through the outage, this one
    assert set(stored.values()) == {1}


def test_a_build_for_another_python_is_refused(built_function: Path) -> None:
    from scripts.examples.tools import interpreter

    python313 = interpreter("3.13")
    assert python313 is not None
    with pytest.raises(BuildError, match=r"built for python3\.12; .* is python3\.13"):
        BuiltVercelFunction(built_function, python=python313)

"""examples/azure's deployment package (``build/app.zip``, ``make example-azure``), run as
deployed: unpacked, under the real library worker in a Python 3.13 that has the workers and
nothing else, so everything the app imports comes from the package's
``.python_packages/lib/site-packages``."""

from __future__ import annotations

import os
import subprocess
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from doow_serverless_dev.azure_local import (
    LocalFunctionApp,
    TriggerInput,
    http_request,
    queue_message,
    timer_tick,
)
from doow_serverless_dev.collector import Collector

from ..examples_built import ensure, venv_python
from .conftest import EXAMPLE_DIR, TEST_KEY

pytestmark = pytest.mark.timeout(120)

WORKER_PYTHON = venv_python(".venv-azure-worker")
SITE = Path(".python_packages/lib/site-packages")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ensure("example-azure")
    unpacked = tmp_path_factory.mktemp("wwwroot")
    with zipfile.ZipFile(EXAMPLE_DIR / "build" / "app.zip") as archive:
        archive.extractall(unpacked)
    return unpacked


@pytest.fixture
def app(package: Path, azure_collector: Collector) -> Iterator[LocalFunctionApp]:
    environment = {
        "DOOW_TRACK_API_KEY": TEST_KEY,
        "DOOW_TRACK_ENDPOINT": azure_collector.url,
        "DOOW_LICENSE_ID": "lic_example_tests",
    }
    with LocalFunctionApp(package, python=str(WORKER_PYTHON), environment=environment) as started:
        yield started


def hello() -> TriggerInput:
    return http_request("GET", "http://localhost/api/hello")


def test_the_package_holds_everything_the_app_imports(package: Path) -> None:
    probe = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; "
        "import azure.functions, doow_serverless, function_app; "
        "print(azure.functions.__file__, doow_serverless.__file__, function_app.__file__)"
    )
    found = subprocess.run(
        [str(WORKER_PYTHON), "-c", probe, str(package / SITE), str(package)],
        cwd=package,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    )
    assert all(path.startswith(str(package) + os.sep) for path in found.stdout.split())
    bare = subprocess.run(
        [str(WORKER_PYTHON), "-c", "import azure_functions_runtime; import doow_serverless"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "No module named 'doow_serverless'" in bare.stderr


def test_the_package_serves_every_function(
    app: LocalFunctionApp, azure_collector: Collector
) -> None:
    assert set(app.functions) == {"hello", "orders", "housekeeping", "jobs"}
    order = http_request(
        "POST",
        "http://localhost/api/orders",
        body=b'{"items": 3}',
        headers={"content-type": "application/json"},
    )
    results = [
        app.invoke("hello", hello()),
        app.invoke("orders", order),
        app.invoke("housekeeping", timer_tick()),
        app.invoke("jobs", queue_message("job", message_id="job-1")),
        app.invoke("jobs", queue_message("job", message_id="job-1", dequeue_count=2)),
    ]

    assert [r.status for r in results] == ["success"] * 5, [r.error for r in results]
    assert results[1].http_body == b'{"items": 3}'
    stats = azure_collector.stats()
    # hello 1, orders 2, housekeeping 1, jobs 1: the redelivered message counts once.
    assert stats["events_stored"] == 5
    assert stats["duplicates"] == 1


def test_a_hanging_endpoint_costs_no_timeout_and_loses_nothing(
    app: LocalFunctionApp, azure_collector: Collector
) -> None:
    assert app.invoke("hello", hello()).ok
    azure_collector.set_faults({"then": {"action": "hang"}})

    hung = app.invoke("hello", hello())

    # functionTimeout is one minute; the flush gives up after its 2 s budget.
    assert hung.ok, hung.error
    assert hung.duration is not None and hung.duration < 5.0
    assert app.timeouts == 0

    azure_collector.clear_faults()
    assert app.invoke("hello", hello()).ok
    stored = Counter(event["event_id"] for event in azure_collector.events(limit=100))
    assert len(stored) == 3
    assert set(stored.values()) == {1}

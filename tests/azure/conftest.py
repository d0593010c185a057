"""Fixtures for running function apps under the real Azure library worker (Python 3.13).

The worker tests need a Python 3.13 virtualenv with ``azure-functions-runtime``,
``azure-functions-runtime-v1``, ``azure-functions`` 2.x and this package: ``make azure-venv``
builds ``.venv-azure`` (``make test`` does it first). ``DOOW_AZURE_PYTHON`` names another
interpreter. Without one they are skipped, except under ``CI`` and ``make test``
(``DOOW_AZURE_REQUIRED``), where they fail.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from doow_serverless_dev.azure_local import LocalFunctionApp
from doow_serverless_dev.collector import Collector

REPO = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"
EXAMPLE_DIR = REPO / "examples" / "azure"
TEST_KEY = "dk_azure_tests_0000"
LICENSE = "lic_azure_tests"
# Passed to in-process trackers: they behave as in an Azure worker (no background thread).
AZURE_ENVIRON = {"FUNCTIONS_WORKER_RUNTIME": "python"}

MakeApp = Callable[..., LocalFunctionApp]


@functools.cache
def _azure_python() -> tuple[str | None, str]:
    python = os.environ.get("DOOW_AZURE_PYTHON") or str(REPO / ".venv-azure" / "bin" / "python")
    if not Path(python).exists():
        return None, f"no Python for the Azure worker at {python}"
    modules = "azure_functions_runtime, azure_functions_runtime_v1, doow_serverless"
    probe = subprocess.run(
        [python, "-c", f"import {modules}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        return None, f"{python} cannot import the Azure workers: {probe.stderr.strip()[-300:]}"
    return python, ""


@pytest.fixture(scope="session")
def azure_python() -> str:
    python, why = _azure_python()
    if python is None:
        message = f"{why}; build it with `make azure-venv` (Python 3.13)"
        if os.environ.get("CI") or os.environ.get("DOOW_AZURE_REQUIRED"):
            pytest.fail(message)
        pytest.skip(message)
    return python


@pytest.fixture
def azure_collector() -> Iterator[Collector]:
    with Collector() as collector:
        yield collector


@pytest.fixture
def make_app(azure_python: str, azure_collector: Collector) -> Iterator[MakeApp]:
    """Start a function app whose events go to ``azure_collector``; stopped afterwards."""
    started: list[LocalFunctionApp] = []

    def make(
        app_dir: Path = APPS / "v2",
        *,
        environment: dict[str, str] | None = None,
        collector: Collector | None = None,
        **options: Any,
    ) -> LocalFunctionApp:
        app = LocalFunctionApp(
            app_dir,
            python=azure_python,
            environment={
                "DOOW_TRACK_API_KEY": TEST_KEY,
                "DOOW_TRACK_ENDPOINT": (collector or azure_collector).url,
                **(environment or {}),
            },
            **options,
        )
        started.append(app)
        return app.start()

    yield make
    for app in started:
        app.stop()

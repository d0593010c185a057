"""Fixtures for running functions under Vercel's real Python runtime, against a collector.

The runtime (PyPI ``vercel-runtime``) needs Python >= 3.12, so it lives in its own
virtualenv, ``.venv-vercel``, which ``make test`` builds (``make vercel-venv`` alone). When
it is missing the tests try to build it with make; failing that they skip with the reason,
except under ``make test`` or CI (``DOOW_VERCEL_REQUIRED`` or ``CI`` set), where they fail.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from doow_serverless_dev.collector import Collector
from doow_serverless_dev.vercel_local import VercelFunction

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = Path(__file__).resolve().parent / "functions"
EXAMPLE_DIR = REPO / "examples" / "vercel"
TEST_KEY = "dk_vercel_tests_7f3a9c"
DEFAULT_PYTHON = REPO / ".venv-vercel" / "bin" / "python"

# Each kind of function Vercel runs: (entrypoint, a path that tracks `n` events).
KINDS = {
    "handler": ("api/handler_class.py", "/?n={n}"),
    "wsgi": ("api/wsgi_flask.py", "/track?n={n}"),
    "asgi": ("api/asgi_fastapi.py", "/track?n={n}"),
}

MakeFunction = Callable[..., VercelFunction]


def _required() -> bool:
    return bool(os.environ.get("DOOW_VERCEL_REQUIRED") or os.environ.get("CI"))


def _has_runtime(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import vercel_runtime, vercel.functions, doow_serverless"],
        capture_output=True,
        check=False,
        timeout=120,
    )
    return probe.returncode == 0


@pytest.fixture(scope="session")
def vercel_python() -> Path:
    """A Python >= 3.12 with vercel-runtime, vercel, Flask, FastAPI and this package."""
    python = Path(os.environ.get("DOOW_VERCEL_PYTHON") or DEFAULT_PYTHON)
    if _has_runtime(python):
        return python
    built = subprocess.run(
        ["make", "-s", "vercel-venv"], cwd=REPO, capture_output=True, text=True, check=False
    )
    if _has_runtime(python):
        return python
    reason = (
        f"Vercel's runtime is not available at {python}: `make vercel-venv` "
        f"(python3.12 and PyPI needed) said: {(built.stderr or built.stdout).strip()[-500:]}"
    )
    if _required():
        pytest.fail(reason)
    pytest.skip(reason + " -- run `make test` to build it and run these tests")


@pytest.fixture
def vercel_collector() -> Iterator[Collector]:
    with Collector() as collector:
        yield collector


@pytest.fixture
def make_function(vercel_python: Path, vercel_collector: Collector) -> Iterator[MakeFunction]:
    """Build a VercelFunction whose events go to ``vercel_collector``; stopped after."""
    made: list[VercelFunction] = []

    def make(
        entrypoint: str,
        *,
        project_dir: Path = FUNCTIONS_DIR,
        environment: dict[str, str] | None = None,
        collector: Collector | None = None,
        **options: Any,
    ) -> VercelFunction:
        function = VercelFunction(
            entrypoint,
            project_dir=project_dir,
            python=vercel_python,
            environment={
                "DOOW_TRACK_API_KEY": TEST_KEY,
                "DOOW_TRACK_ENDPOINT": (collector or vercel_collector).url,
                **(environment or {}),
            },
            **options,
        )
        made.append(function)
        return function

    yield make
    for function in made:
        function.stop()

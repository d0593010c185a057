"""examples/azure: ``scripts/azure_package.py`` wrote ``build/app.zip``; it is unpacked and run
as Azure runs a deployment package, under the real library worker in a Python 3.13 that has
the workers and nothing else."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from doow_serverless_dev.azure_local import AppLoadError, LocalFunctionApp, http_request
from doow_serverless_dev.collector import Collector

from .common import Built, arrived_once, sandbox, tail, venv_python

FOLDER = "examples/azure"
ZIP = "build/app.zip"
SITE = ".python_packages/lib/site-packages"
WORKER_VENV = ".venv-azure-worker"  # the library workers alone (requirements/azure-worker.txt)
FUNCTIONS = {"hello", "orders", "housekeeping", "jobs"}
NEEDED = ("host.json", "function_app.py", "requirements.txt")
LEFT_OUT = ("README.md", "local.settings.json", "local.settings.json.example")


def built(root: Path) -> Built:
    folder = root / FOLDER / "build" / "app"
    return Built(folder, folder / SITE, "3.13")


def inspect(root: Path) -> list[str]:
    archive = root / FOLDER / ZIP
    if not archive.is_file():
        return [f"no {archive}"]
    names = set(zipfile.ZipFile(archive).namelist())
    problems = [f"{name} is not in {ZIP}" for name in NEEDED if name not in names]
    if not any(name.startswith(f"{SITE}/") for name in names):
        problems.append(f"{ZIP} has nothing in {SITE}")
    problems += [f"{name} is in {ZIP}" for name in LEFT_OUT if name in names]
    return problems


def smoke(root: Path) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="doow-azure-package-") as work:
        unpacked, tmp = Path(work) / "wwwroot", Path(work) / "tmp"
        tmp.mkdir()
        zipfile.ZipFile(root / FOLDER / ZIP).extractall(unpacked)
        with Collector() as collector:
            python = str(venv_python(WORKER_VENV))
            app = LocalFunctionApp(
                unpacked, python=python, environment=sandbox(collector, str(tmp))
            )
            try:
                app.start()
            except AppLoadError as exc:
                app.stop()
                return [f"the worker did not load the package: {exc}\n{tail(app.output)}"]
            try:
                if set(app.functions) != FUNCTIONS:
                    return [f"the worker found {sorted(app.functions)}, not {sorted(FUNCTIONS)}"]
                result = app.invoke("hello", http_request("GET", "http://localhost/api/hello"))
            finally:
                app.stop()
            if not result.ok or result.http_status != 200:
                return [f"hello: {result.status} ({result.error}); output:\n{tail(app.output)}"]
            return arrived_once(collector, "api_calls")

"""examples/vercel: ``vercel build`` wrote ``.vercel/output/functions/api/index.func``; it runs
as Vercel runs it (its bootstrap, its ``_vendor``, its ``.vc-config.json``) under a bare
Python 3.12."""

from __future__ import annotations

import tempfile
from pathlib import Path

from doow_serverless_dev.collector import Collector
from doow_serverless_dev.vercel_local import BuildError, BuiltVercelFunction, read_build

from .common import Built, arrived_once, sandbox, tail
from .tools import interpreter

FOLDER = "examples/vercel"
FUNCTION = ".vercel/output/functions/api/index.func"
HANDLER = "vc__handler__python.vc_handler"
RUNTIME = "python3.12"


def built(root: Path) -> Built:
    folder = root / FOLDER / FUNCTION
    return Built(folder, folder / "_vendor", "3.12", frozenset({"vercel"}))


def inspect(root: Path) -> list[str]:
    folder = built(root).artefact
    try:
        build = read_build(folder)
    except BuildError as exc:
        return [str(exc)]
    problems = []
    if build.handler != HANDLER:
        problems.append(f"handler {build.handler!r}, not Vercel's bootstrap {HANDLER!r}")
    if build.runtime != RUNTIME:
        problems.append(f"runtime {build.runtime!r}, not {RUNTIME!r}")
    if build.environment.get("PYTHONPATH") != "_vendor":
        problems.append(f"PYTHONPATH is {build.environment.get('PYTHONPATH')!r}, not '_vendor'")
    for needed in ("api/index.py", "_vendor/vercel_runtime"):
        if not (folder / needed).exists():
            problems.append(f"{needed} is not in {folder.name}")
    return problems


def smoke(root: Path) -> list[str]:
    python = interpreter("3.12")
    if python is None:
        return ["no python3.12 to run the function with (set PYTHON312)"]
    with Collector() as collector, tempfile.TemporaryDirectory(prefix="doow-tmp-") as tmp:
        environment = sandbox(collector, tmp)
        try:
            function = BuiltVercelFunction(
                built(root).artefact, python=python, environment=environment
            )
        except BuildError as exc:
            return [str(exc)]
        with function:
            try:
                response = function.request("GET", "/api/hello")
            except RuntimeError as exc:  # the runtime did not start: the app failed to load
                return [f"the function did not start: {exc}"]
        if not response.ok or response.status != 200:
            return [
                f"GET /api/hello: {response.status} ({response.error}); its output:\n"
                + tail(function.output + [log.message for log in function.logs])
            ]
        return arrived_once(collector, "api_calls")

"""examples/lambda: ``sam build`` wrote ``.aws-sam/build`` (the function's folder and a template
pointing at it); the function runs from that folder under the real runtime client, in a
Python 3.12 that has the runtime client and nothing else (Lambda's ``/var/runtime``)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from doow_serverless_dev.collector import Collector
from doow_serverless_dev.lambda_local import LocalFunction
from doow_serverless_dev.lambda_local._template import FunctionSpec, TemplateError, read_functions

from .common import Built, arrived_once, sandbox, tail, venv_python

FOLDER = "examples/lambda"
TEMPLATE = ".aws-sam/build/template.yaml"
FUNCTION = "DoowExampleFunction"
RUNTIME_VENV = ".venv-lambda"  # the runtime client alone (requirements/lambda.txt)
# Beside the function's code, never in what is deployed (env.json holds a development key).
DEVELOPMENT_FILES = ("README.md", "env.json", "events")


def spec(root: Path) -> FunctionSpec:
    functions = {function.logical_id: function for function in read_functions(root / TEMPLATE)}
    if FUNCTION not in functions:
        raise TemplateError(f"{TEMPLATE} has no {FUNCTION}")
    return functions[FUNCTION]


def built(root: Path) -> Built:
    return Built(
        root / ".aws-sam" / "build" / FUNCTION, root / ".aws-sam" / "build" / FUNCTION, "3.12"
    )


def inspect(root: Path) -> list[str]:
    try:
        function = spec(root)
    except TemplateError as exc:
        return [str(exc)]
    problems = function.problems()
    if function.code_dir != built(root).artefact:
        problems.append(
            f"the built template's CodeUri is {function.code_dir}, not the built folder"
        )
    module = str(function.handler).rpartition(".")[0].replace(".", "/") + ".py"
    if not (function.code_dir / module).is_file():
        problems.append(f"the handler's module {module} is not in {function.code_dir}")
    shipped = [name for name in DEVELOPMENT_FILES if (function.code_dir / name).exists()]
    if shipped:
        problems.append(f"the artefact ships the example's development files: {shipped}")
    return problems


def smoke(root: Path) -> list[str]:
    function = spec(root)
    event = json.loads((root / FOLDER / "events" / "hello.json").read_text(encoding="utf-8"))
    with Collector() as collector, tempfile.TemporaryDirectory(prefix="doow-tmp-") as tmp:
        environment = {
            **function.environment,
            "PYTHONDONTWRITEBYTECODE": "1",  # /var/task is read-only on Lambda
            **sandbox(collector, tmp),
        }
        with LocalFunction(
            str(function.handler),
            code_dir=function.code_dir,
            timeout=function.timeout_seconds,
            memory_size=function.memory_mb,
            environment=environment,
            function_name=function.logical_id,
            runtime=function.runtime,
            python=str(venv_python(RUNTIME_VENV)),
        ) as local:
            result = local.invoke(event)
        if not result.ok or (result.payload or {}).get("statusCode") != 200:
            return [
                f"GET /hello: {result.status} {result.body[:500]!r}; output:\n{tail(local.output)}"
            ]
        return arrived_once(collector, "api_calls")

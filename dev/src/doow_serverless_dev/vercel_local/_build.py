"""A function as ``vercel build`` writes it: ``.vercel/output/functions/<path>.func``.

The folder is what Vercel deploys. Its ``.vc-config.json`` names the handler
(``vc__handler__python.vc_handler``: the bootstrap that Vercel's Python builder generates,
which puts ``_vendor`` on ``sys.path`` and imports the runtime vendored there), the runtime
(``python3.12``), ``maxDuration``, and the environment the platform gives the process
(``PYTHONPATH=_vendor``). The platform starts that runtime's interpreter in the folder and
imports the handler's module; in the runtime's IPC mode the import starts its HTTP server.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

CONFIG_NAME = ".vc-config.json"


class BuildError(ValueError):
    """A ``.func`` folder that Vercel could not run; the message says why."""


@dataclass(frozen=True)
class FunctionBuild:
    folder: Path
    handler: str  # "module.attribute", relative to the folder
    runtime: str  # "python3.12"
    max_duration: float | None  # seconds; None: the platform's default
    environment: dict[str, str]

    @property
    def module(self) -> str:
        return self.handler.rpartition(".")[0]


def read_build(folder: str | Path) -> FunctionBuild:
    """Read and check a built function folder (``...func``)."""
    path = Path(folder).resolve()
    config_path = path / CONFIG_NAME
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"cannot read {config_path}: {exc}") from None
    if not isinstance(config, dict):
        raise BuildError(f"{config_path} does not hold a JSON object")
    handler = config.get("handler")
    runtime = config.get("runtime")
    if not isinstance(handler, str) or "." not in handler:
        raise BuildError(f"{config_path}: handler {handler!r} is not 'module.attribute'")
    module_file = path / (handler.rpartition(".")[0].replace(".", "/") + ".py")
    if not module_file.is_file():
        raise BuildError(f"{config_path}: the handler's module {module_file.name} is missing")
    if not isinstance(runtime, str) or not runtime.startswith("python3."):
        raise BuildError(f"{config_path}: runtime {runtime!r} is not a Python runtime")
    environment = config.get("environment") or {}
    if not isinstance(environment, dict):
        raise BuildError(f"{config_path}: environment is not an object")
    duration = config.get("maxDuration")
    return FunctionBuild(
        folder=path,
        handler=handler,
        runtime=runtime,
        max_duration=float(duration) if isinstance(duration, (int, float)) else None,
        environment={str(name): str(value) for name, value in environment.items()},
    )


def runtime_of(python: str | Path) -> str:
    """The runtime name of an interpreter (``python3.12``), as ``.vc-config.json`` spells it."""
    completed = subprocess.run(
        [str(python), "-c", "import sys; print('python%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if completed.returncode != 0:
        raise BuildError(f"{python} does not run: {completed.stderr.strip()[-300:]}")
    return completed.stdout.strip()

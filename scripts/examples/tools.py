"""The tools an example's build commands name (pip, vercel, uv, sam, python3.12/3.13), as the
Makefile pinned and installed them, first on ``PATH`` while the commands run."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 900


def interpreter(version: str) -> Path | None:
    """``PYTHON312``/``PYTHON313`` as the Makefile sets them, else pyenv's, else ``PATH``'s."""
    named = os.environ.get("PYTHON" + version.replace(".", ""))
    if named:
        return Path(named)
    found = sorted(glob.glob(f"/root/.pyenv/versions/{version}*/bin/python{version}"))
    if found:
        return Path(found[-1])
    on_path = shutil.which(f"python{version}")
    return Path(on_path) if on_path else None


def tool_paths() -> dict[str, Path | None]:
    return {
        "pip": REPO / ".venv" / "bin" / "pip",
        "vercel": REPO / ".tools" / "vercel-cli" / "node_modules" / ".bin" / "vercel",
        "uv": REPO / ".venv-vercel" / "bin" / "uv",
        "sam": REPO / ".venv-sam" / "bin" / "sam",
        "python3.12": interpreter("3.12"),
        "python3.13": interpreter("3.13"),
    }


def run_commands(commands: str, cwd: Path) -> int:
    """Run the commands with bash (``-euxo pipefail``: each line shown, the first failure
    ends them) in ``cwd``, the pinned tools first on ``PATH``; return bash's exit status."""
    with tempfile.TemporaryDirectory(prefix="doow-tools-") as bin_dir:
        for name, target in tool_paths().items():
            if target is not None and target.exists():
                os.symlink(target, os.path.join(bin_dir, name))
        environment = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
        completed = subprocess.run(
            ["bash", "-euxo", "pipefail", "-c", commands],
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
        return completed.returncode

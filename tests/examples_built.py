"""The examples as their platforms' tools built them (``make example-*``), for the tests that
run those artefacts.

Under ``make test`` they were built and checked just before pytest (``DOOW_EXAMPLES_BUILT=1``).
Otherwise the first test that needs one runs its make target, so no test runs a build older
than the code; when make fails, the test fails under CI or ``make`` (strict skips) and is
skipped with make's output elsewhere.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from . import skips

REPO = Path(__file__).resolve().parents[1]
MAKE_TIMEOUT_S = 1200

# make's verdict per target, this session: None when it succeeded, else why not.
_made: dict[str, str | None] = {}


def ensure(target: str) -> None:
    """Run ``make TARGET`` once per session, unless make test has just done it."""
    if os.environ.get("DOOW_EXAMPLES_BUILT") == "1":
        return
    if target not in _made:
        done = subprocess.run(
            ["make", "-s", target],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=MAKE_TIMEOUT_S,
            check=False,
        )
        failed = f"`make {target}` failed: ...{done.stdout[-3000:]}"
        _made[target] = None if done.returncode == 0 else failed
    reason = _made[target]
    if reason is not None:
        if os.environ.get("CI") or skips.strict():
            pytest.fail(reason)
        pytest.skip(reason)


def venv_python(name: str) -> Path:
    return REPO / name / "bin" / "python"

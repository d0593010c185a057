"""The example checks fail on a broken example: a copy of the checkout with one example
broken (a dependency left out of its requirements, a wrong handler) is built with the same
tools and commands as ``make example-*``, and the check must fail, naming the cause."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..examples_built import REPO, ensure

pytestmark = pytest.mark.timeout(600)

# What a checkout needs for `pip wheel ..` of this package, shared rather than copied.
SHARED = ("pyproject.toml", "src", "docs", "scripts")
BUILD_OUTPUT = shutil.ignore_patterns(".vercel", "uv.lock", "build", "__pycache__")


def checkout(tmp_path: Path, example: str) -> Path:
    root = tmp_path / "checkout"
    (root / "examples").mkdir(parents=True)
    for name in SHARED:
        (root / name).symlink_to(REPO / name)
    shutil.copytree(REPO / "examples" / example, root / "examples" / example, ignore=BUILD_OUTPUT)
    shutil.copy(REPO / "template.yaml", root / "template.yaml")
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}: the break would not happen"
    path.write_text(text.replace(old, new))


def run_check(example: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.examples", example, "--root", str(root)],
        cwd=REPO,
        env={**os.environ, "VERCEL_TELEMETRY_DISABLED": "1", "NO_UPDATE_NOTIFIER": "1"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    ensure("example-tools")


@pytest.mark.parametrize(
    ("example", "file", "old", "new", "cause"),
    [
        pytest.param(
            "vercel",
            "examples/vercel/pyproject.toml",
            ', "flask>=3"',
            "",
            "No module named 'flask'",
            id="vercel-dependency-left-out",
        ),
        pytest.param(
            "lambda",
            "examples/lambda/function/requirements.txt",
            "aws-lambda-powertools>=3\n",
            "",
            "No module named 'aws_lambda_powertools'",
            id="lambda-dependency-left-out",
        ),
        pytest.param(
            "lambda",
            "template.yaml",
            "Handler: app.handler",
            "Handler: app.handle",
            "Runtime.HandlerNotFound",
            id="lambda-wrong-handler",
        ),
        pytest.param(
            "azure",
            "examples/azure/requirements.txt",
            "doow-serverless\n",
            "",
            "No module named 'doow_serverless'",
            id="azure-dependency-left-out",
        ),
    ],
)
def test_a_broken_example_fails_its_check(
    tmp_path: Path, example: str, file: str, old: str, new: str, cause: str
) -> None:
    root = checkout(tmp_path, example)
    edit(root / file, old, new)

    checked = run_check(example, root)

    assert checked.returncode == 1, checked.stdout[-3000:] + checked.stderr[-3000:]
    failure = checked.stderr[checked.stderr.index(f"example-{example}: FAILED") :]
    assert cause in failure, failure[-3000:]


def test_the_same_copy_unbroken_passes(tmp_path: Path) -> None:
    """The control: the copied checkout itself is not what fails the checks above."""
    checked = run_check("azure", checkout(tmp_path, "azure"))

    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    assert "one event arrived" in checked.stdout

"""The example as ``sam build`` built it: the folder holds everything the function imports, and
``doow-serverless invoke`` on the built template runs that folder (the README's way to try it).
test_runtime.py runs the same build further."""

from __future__ import annotations

import os
import subprocess

import pytest

from doow_serverless.cli import main

from .conftest import BUILT_TEMPLATE, EVENTS_DIR, EXAMPLE_FUNCTION, RUNTIME_PYTHON, built_example

pytestmark = pytest.mark.timeout(120)


def test_the_build_holds_everything_the_function_imports() -> None:
    built = built_example()
    probe = (
        "import sys, app, doow_serverless, aws_lambda_powertools; "
        "print('python%d.%d' % sys.version_info[:2], app.__file__, doow_serverless.__file__, "
        "aws_lambda_powertools.__file__)"
    )
    found = subprocess.run(
        [str(RUNTIME_PYTHON), "-c", probe],
        cwd=built.code_dir,
        env={
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(built.code_dir),
            "PYTHONDONTWRITEBYTECODE": "1",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    runtime, *paths = found.stdout.split()

    assert runtime == built.runtime == "python3.12"
    assert all(path.startswith(str(built.code_dir) + os.sep) for path in paths), paths
    # The runtime's interpreter alone has the runtime client, and none of the function's code.
    bare = subprocess.run(
        [str(RUNTIME_PYTHON), "-c", "import awslambdaric; import doow_serverless"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "No module named 'doow_serverless'" in bare.stderr


def test_invoke_runs_the_built_template(capsys: pytest.CaptureFixture[str]) -> None:
    built_example()
    code = main(
        [
            "invoke",
            EXAMPLE_FUNCTION,
            "-t",
            str(BUILT_TEMPLATE),
            "-e",
            str(EVENTS_DIR / "orders.json"),
            "--python",
            str(RUNTIME_PYTHON),
        ]
    )

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "the collector received 2 event(s)" in captured.err
    assert "order_items=3" in captured.err

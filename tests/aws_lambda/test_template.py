"""template.yaml: the project's own checks (cfn-lint misses a bad Runtime or Timeout on SAM
functions), and the small reader that `doow-serverless invoke` uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from doow_serverless_dev.lambda_local._template import TemplateError, read_functions

from .conftest import EXAMPLE_DIR, REPO

TEMPLATE = REPO / "template.yaml"


def test_the_repository_template_passes_the_checks() -> None:
    (function,) = read_functions(TEMPLATE)

    assert function.problems() == []
    assert function.logical_id == "DoowExampleFunction"
    assert function.handler == "app.handler"
    assert function.code_dir == EXAMPLE_DIR
    assert function.runtime == "python3.12"
    assert function.timeout_seconds == 10
    assert function.environment["DOOW_TRACK_ENDPOINT"] == "https://api.doow.co"


def test_the_api_key_is_never_a_literal_in_the_template() -> None:
    text = TEMPLATE.read_text()
    (function,) = read_functions(TEMPLATE)

    assert "dk_" not in text.replace('"^dk_.+"', "").replace("dk_...", "")
    assert function.unresolved == ("DOOW_TRACK_API_KEY",)
    assert "NoEcho: true" in text


def write_template(tmp_path: Path, properties: str, extra: str = "") -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Parameters:\n"
        "  Endpoint:\n"
        "    Type: String\n"
        "    Default: http://127.0.0.1:8787\n"
        f"{extra}"
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: src/\n"
        "      Handler: app.handler\n"
        f"{properties}"
    )
    return path


@pytest.mark.parametrize(
    ("properties", "problem"),
    [
        ("      Runtime: python3.12\n      Timeout: 901\n", "Timeout 901"),
        ("      Runtime: python3.12\n      Timeout: 0\n", "Timeout 0"),
        ("      Runtime: python3.12\n      Timeout: 2.5\n", "Timeout 2.5"),
        ("      Runtime: python2.7\n      Timeout: 10\n", "Runtime 'python2.7'"),
        ("      Runtime: nodejs20.x\n", "Runtime 'nodejs20.x'"),
        ("      Timeout: 10\n", "Runtime None"),
        ("      Runtime: python3.12\n      MemorySize: 64\n", "MemorySize 64"),
    ],
)
def test_problems_are_named(tmp_path: Path, properties: str, problem: str) -> None:
    (function,) = read_functions(write_template(tmp_path, properties))
    assert any(problem in found for found in function.problems()), function.problems()


def test_globals_references_and_overrides(tmp_path: Path) -> None:
    path = write_template(
        tmp_path,
        "      Environment:\n"
        "        Variables:\n"
        "          DOOW_TRACK_ENDPOINT: !Ref Endpoint\n"
        "          URL: !Sub '${Endpoint}/x-${AWS::Region}'\n"
        "          ARN: !GetAtt Other.Arn\n",
        extra="Globals:\n  Function:\n    Runtime: python3.13\n    Timeout: 30\n"
        "    Environment:\n      Variables:\n        SHARED: 'yes'\n",
    )
    (function,) = read_functions(path, {"Endpoint": "http://127.0.0.1:9999"})

    assert function.problems() == []
    assert function.runtime == "python3.13"
    assert function.timeout_seconds == 30
    assert function.code_dir == (tmp_path / "src").resolve()
    assert function.environment == {
        "SHARED": "yes",
        "DOOW_TRACK_ENDPOINT": "http://127.0.0.1:9999",
        "URL": "http://127.0.0.1:9999/x-us-east-1",
        "ARN": "",
    }
    assert function.unresolved == ("ARN",)


def test_an_unreadable_template_is_a_template_error(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("Resources: [unclosed\n")
    with pytest.raises(TemplateError, match="cannot read"):
        read_functions(path)
    path.write_text("Description: nothing\n")
    with pytest.raises(TemplateError, match="no Resources"):
        read_functions(path)


def test_the_ci_check_script_fails_on_a_bad_template(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = write_template(tmp_path, "      Runtime: python3.12\n      Timeout: 901\n")
    script = REPO / "scripts" / "check_template.py"
    failed = subprocess.run(
        [sys.executable, str(script), str(bad)], capture_output=True, text=True, check=False
    )
    passed = subprocess.run(
        [sys.executable, str(script), str(TEMPLATE)], capture_output=True, text=True, check=False
    )

    assert failed.returncode == 1
    assert "Timeout 901" in failed.stderr
    assert passed.returncode == 0, passed.stderr

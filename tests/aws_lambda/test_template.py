"""template.yaml: the project's own checks (cfn-lint misses a bad Runtime or Timeout on SAM
functions), and the small reader that `doow-serverless invoke` uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from doow_serverless._durability.lines import ACK_MARKER, MARKER, ack_lines, unsent_lines
from doow_serverless_dev.lambda_local._template import (
    FunctionSpec,
    TemplateError,
    deployed_resources,
    read_functions,
)

from .conftest import EXAMPLE_DIR, REPO

TEMPLATE = REPO / "template.yaml"


def example_function() -> FunctionSpec:
    (function,) = [f for f in read_functions(TEMPLATE) if f.logical_id == "DoowExampleFunction"]
    return function


def test_the_repository_template_passes_the_checks() -> None:
    functions = read_functions(TEMPLATE)
    function = example_function()

    assert [f.problems() for f in functions] == [[], []]
    assert function.logical_id == "DoowExampleFunction"
    assert function.handler == "app.handler"
    assert function.code_dir == EXAMPLE_DIR
    assert function.runtime == "python3.12"
    assert function.timeout_seconds == 10
    assert function.environment["DOOW_TRACK_ENDPOINT"] == "https://api.doow.co"


def test_the_api_key_is_never_a_literal_in_the_template() -> None:
    text = TEMPLATE.read_text()

    assert "dk_" not in text.replace('"^dk_.+"', "").replace("dk_...", "")
    assert [f.unresolved for f in read_functions(TEMPLATE)] == [("DOOW_TRACK_API_KEY",)] * 2
    assert "NoEcho: true" in text


FORWARDER_RESOURCES = {
    "DoowForwarderFunction": "AWS::Serverless::Function",
    "DoowForwarderDeadLetterQueue": "AWS::SQS::Queue",
    "DoowForwarderPermission": "AWS::Lambda::Permission",
    "DoowForwarderSubscription": "AWS::Logs::SubscriptionFilter",
}


def test_the_forwarder_switch_deploys_all_of_it_or_none_of_it() -> None:
    on = deployed_resources(TEMPLATE)  # the default
    off = deployed_resources(TEMPLATE, {"DoowForwarder": "false"})

    assert {name: on[name]["Type"] for name in FORWARDER_RESOURCES} == FORWARDER_RESOURCES
    assert set(off) == {"DoowExampleFunction", "DoowExampleLogGroup"}
    assert set(on) == set(off) | set(FORWARDER_RESOURCES)


def test_the_forwarder_is_wired_to_the_example_functions_log_group() -> None:
    resources = deployed_resources(TEMPLATE, {"DoowForwarder": "true"})
    group = resources["DoowExampleLogGroup"]["Properties"]
    function = resources["DoowForwarderFunction"]["Properties"]
    permission = resources["DoowForwarderPermission"]["Properties"]
    subscription = resources["DoowForwarderSubscription"]["Properties"]

    assert group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${DoowExampleFunction}"}
    assert function["Handler"] == "doow_serverless.forwarders.aws.handler"
    assert function["EventInvokeConfig"] == {
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 21600,
    }
    assert function["DeadLetterQueue"] == {
        "Type": "SQS",
        "TargetArn": {"Fn::GetAtt": ["DoowForwarderDeadLetterQueue", "Arn"]},
    }
    assert permission["Principal"] == "logs.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["DoowExampleLogGroup", "Arn"]}
    assert permission["FunctionName"] == {"Fn::GetAtt": ["DoowForwarderFunction", "Arn"]}
    assert subscription["LogGroupName"] == {"Ref": "DoowExampleLogGroup"}
    assert subscription["DestinationArn"] == {"Fn::GetAtt": ["DoowForwarderFunction", "Arn"]}
    assert resources["DoowForwarderSubscription"]["DependsOn"] == "DoowForwarderPermission"


def test_the_filter_pattern_matches_both_kinds_of_the_sdks_lines() -> None:
    pattern = deployed_resources(TEMPLATE)["DoowForwarderSubscription"]["Properties"]
    # "?a ?b": a log event holding either term (CloudWatch Logs' OR of terms).
    terms = pattern["FilterPattern"].split()
    assert terms == [f"?{MARKER}", f"?{ACK_MARKER}"]
    for line in [*unsent_lines("b", [{"event_id": "e"}], "r"), *ack_lines(["b"])]:
        assert any(term[1:] in line for term in terms)


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


def test_conditions_are_evaluated_as_cloudformation_does(tmp_path: Path) -> None:
    path = write_template(
        tmp_path,
        "      Runtime: python3.12\n"
        "    Condition: Both\n"
        "  Queue:\n"
        "    Type: AWS::SQS::Queue\n"
        "    Condition: Either\n",
        extra="  Mode:\n    Type: String\n    Default: a\n"
        "Conditions:\n"
        "  IsA: !Equals [!Ref Mode, a]\n"
        "  NotB: !Not [!Equals [b, !Ref Mode]]\n"
        "  Both: !And [!Condition IsA, !Condition NotB]\n"
        "  Either: !Or [!Condition IsA, !Equals [!Ref Mode, b]]\n",
    )

    assert set(deployed_resources(path)) == {"Fn", "Queue"}
    assert set(deployed_resources(path, {"Mode": "b"})) == {"Queue"}
    assert set(deployed_resources(path, {"Mode": "c"})) == set()

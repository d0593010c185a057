"""`doow-serverless invoke`: the example from template.yaml under the real runtime client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doow_serverless.cli import main
from doow_serverless_dev.collector import Collector

from .conftest import EVENTS_DIR, EXAMPLE_DIR, REPO

pytestmark = pytest.mark.timeout(60)


def test_invoke_runs_the_template_function_against_its_own_collector(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    # Two functions (the example and the forwarder): named, as `sam local invoke` wants.
    code = main(
        ["invoke", "DoowExampleFunction", "-e", str(EVENTS_DIR / "orders.json"), "--count", "2"]
    )

    captured = capsys.readouterr()
    assert code == 0, captured.err
    responses = [json.loads(line) for line in captured.out.splitlines()]
    assert [response["statusCode"] for response in responses] == [200, 200]
    assert "(cold start" in captured.err
    assert "(warm start" in captured.err
    assert "the collector received 4 event(s)" in captured.err
    assert "order_items=3" in captured.err


def test_invoke_sends_to_the_endpoint_env_json_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with Collector() as collector:
        env_file = tmp_path / "env.json"
        # As in examples/lambda/env.json: the Docker name of the host, mapped to 127.0.0.1.
        endpoint = collector.url.replace("127.0.0.1", "host.docker.internal")
        env_file.write_text(
            json.dumps(
                {
                    "DoowExampleFunction": {
                        "DOOW_TRACK_API_KEY": "dk_env_json_key",
                        "DOOW_TRACK_ENDPOINT": endpoint,
                    }
                }
            )
        )
        code = main(
            [
                "invoke",
                "DoowExampleFunction",
                "-t",
                str(REPO / "template.yaml"),
                "-e",
                str(EVENTS_DIR / "hello.json"),
                "-n",
                str(env_file),
            ]
        )
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert collector.stats()["events_stored"] == 1
    assert "collector at" not in captured.err


def test_with_several_functions_invoke_asks_which_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    code = main(["invoke", "-e", str(EVENTS_DIR / "hello.json")])

    assert code == 2
    assert "name one of: DoowExampleFunction, DoowForwarderFunction" in capsys.readouterr().err


def test_invoke_refuses_a_template_that_fails_the_checks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        (REPO / "template.yaml")
        .read_text()
        .replace("Timeout: 10", "Timeout: 1000")
        .replace("CodeUri: examples/lambda/function/", f"CodeUri: {EXAMPLE_DIR}")
    )
    code = main(["invoke", "DoowExampleFunction", "-t", str(template)])

    assert code == 2
    assert "Timeout 1000 must be a whole number of seconds from 1 to 900" in capsys.readouterr().err


def test_invoke_reports_a_function_error_with_exit_code_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(
        "def handler(event, context):\n    raise RuntimeError('broken ' + event['why'])\n"
    )
    (tmp_path / "event.json").write_text('{"why": "on purpose"}')
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n"
        "    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: fn/\n"
        "      Handler: app.handler\n      Runtime: python3.12\n      Timeout: 5\n"
    )
    code = main(
        ["invoke", "-t", str(tmp_path / "template.yaml"), "-e", str(tmp_path / "event.json")]
    )

    captured = capsys.readouterr()
    assert code == 1
    error = json.loads(captured.out)
    assert error["errorType"] == "RuntimeError"
    assert error["errorMessage"] == "broken on purpose"


def test_invoke_plays_managed_instances_with_concurrency(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    code = main(
        [
            "invoke",
            "DoowExampleFunction",
            "-e",
            str(EVENTS_DIR / "orders.json"),
            "--count",
            "6",
            "--concurrency",
            "3",
        ]
    )

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert len(captured.out.splitlines()) == 6
    # Background delivery, detected: the events go after the responses, all of them.
    assert "the collector received 12 event(s)" in captured.err
    assert "lambda-managed-instances" not in captured.err  # no warning about the mode


def test_invoke_after_response_reports_when_the_invocation_completed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    code = main(
        [
            "invoke",
            "DoowExampleFunction",
            "-e",
            str(EVENTS_DIR / "orders.json"),
            "--count",
            "2",
            "--delivery",
            "after-response",
        ]
    )

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "the collector received 4 event(s)" in captured.err
    assert "not available" not in captured.err  # the extension registered


def test_invoke_refuses_an_unknown_delivery(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["invoke", "--delivery", "eventually"])
    assert "invalid choice" in capsys.readouterr().err


def test_the_forwarder_runs_from_the_template_like_sam_local_invoke(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `sam local invoke DoowForwarderFunction -e <the event sam generate-event prints>`.
    monkeypatch.chdir(REPO)
    event = REPO / "tests" / "aws_lambda" / "events" / "cloudwatch_logs.json"
    code = main(["invoke", "DoowForwarderFunction", "-e", str(event)])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    (response,) = [json.loads(line) for line in captured.out.splitlines()]
    assert response["messageType"] == "DATA_MESSAGE"
    assert response["found"] == 0  # its two messages are not the SDK's

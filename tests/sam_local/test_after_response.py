"""After-response delivery under ``sam local``: the Runtime Interface Emulator serves the
Extensions API, so the SDK's internal extension registers there as on Lambda, and the
emulator's own debug log is a second judge of when the flush runs.

Unlike Lambda, the emulator answers the caller only once the invocation is complete (the
runtime *and* every extension called ``next``): its invoke handler writes the response
after ``Invoke()`` returns, and that waits for the extensions. So under ``sam local`` the
response still waits for the flush; on Lambda it does not.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from doow_serverless._core.wire import event_id_from_seed
from doow_serverless_dev.collector import Collector

from . import commands
from .engine import Engine
from .sam import BUILT_TEMPLATE, Sam, reports

pytestmark = pytest.mark.timeout(300)

LATENCY_MS = 800
# The emulator's debug lines: "04 Dec 2026 23:01:11,228 [DEBUG] (rapid) ..."
_STAMP = re.compile(r"^(\d\d \w{3} \d{4} \d\d:\d\d:\d\d,\d{3}) \[\w+\] \(rapid\) (.*)$")


def emulator_log(log: str) -> list[tuple[datetime, str]]:
    lines = []
    for line in log.splitlines():
        match = _STAMP.match(line)
        if match:
            lines.append((datetime.strptime(match[1], "%d %b %Y %H:%M:%S,%f"), match[2]))
    return lines


def first(lines: list[tuple[datetime, str]], pattern: str) -> tuple[int, datetime]:
    for index, (stamp, text) in enumerate(lines):
        if re.search(pattern, text):
            return index, stamp
    raise AssertionError(f"the emulator never logged {pattern!r}")


def test_the_extension_flushes_after_the_runtime_s_response_and_before_release(
    sam: Sam, collector: Collector, hello_event: Path, tmp_path: Path
) -> None:
    collector.set_faults({"latency_ms": LATENCY_MS})
    log = tmp_path / "sam.log"
    # SAM_CLI_RIE_DEV=1: SAM starts the emulator with --log-level debug.
    run = sam.invoke(
        hello_event, commands.AFTER_RESPONSE, log_file=log, environment={"SAM_CLI_RIE_DEV": "1"}
    )

    assert run.returncode == 0, sam.shown(run.log)
    assert run.response["statusCode"] == 200
    assert "delivery after the response is not available" not in run.log
    lines = emulator_log(run.log)
    registered, _ = first(lines, r"Internal agent doow-serverless \(.*\) registered, .*INVOKE")
    responded, response_at = first(lines, r"POST /2018-06-01/runtime/invocation/.*/response")
    awaiting, _ = first(lines, r"Await agents ready")
    released, released_at = next(
        (index, stamp)
        for index, (stamp, text) in enumerate(lines)
        if index > awaiting and "GET /2020-01-01/extension/event/next" in text
    )
    done, _ = first(lines, r"Invoke\(\) success")
    # Registered in init; the runtime answered; the emulator then waited for the extension,
    # which asked for its next event only once Doow had answered the flush; only then was
    # the invocation done, and the caller's response written.
    assert registered < responded < awaiting < released < done
    assert (released_at - response_at).total_seconds() >= LATENCY_MS / 1000 - 0.05
    (report,) = reports(run.log)
    assert report.duration_ms >= LATENCY_MS
    events = collector.events()
    assert [event["event_id"] for event in events] == [event_id_from_seed(f"{report.request_id}:0")]
    assert collector.stats()["duplicates"] == 0
    assert sam.secret not in run.log + run.stderr


@pytest.mark.parametrize("delivery", ["sync", "after-response"])
def test_under_the_emulator_the_response_waits_for_the_flush_in_both_modes(
    sam: Sam, collector: Collector, tmp_path: Path, delivery: str
) -> None:
    log = tmp_path / "sam.log"
    overrides = ("--parameter-overrides", f"DoowDelivery={delivery}")
    with sam.start_api(log, overrides) as api:
        api.request("GET", "/hello")  # the cold start, out of the measure
        collector.set_faults({"latency_ms": LATENCY_MS})
        answers = [api.request("GET", "/hello") for _ in range(2)]

    assert [answer.status for answer in answers] == [200, 200]
    # On Lambda, after-response would answer in milliseconds; the emulator holds it back.
    assert all(answer.seconds >= LATENCY_MS / 1000 for answer in answers), answers
    assert len(collector.events(limit=100)) == 3
    logged = log.read_text()
    assert "delivery after the response is not available" not in logged


def without_extensions(directory: Path) -> Path:
    """The built template, its function with a layer that holds the file the emulator
    checks for at init (``/opt/disable-extensions-jwigqn8j``): no Extensions API there."""
    layer = directory / "layer"
    layer.mkdir()
    (layer / "disable-extensions-jwigqn8j").touch()
    template = yaml.safe_load(BUILT_TEMPLATE.read_text())
    function = template["Resources"][commands.FUNCTION]["Properties"]
    function["CodeUri"] = str((BUILT_TEMPLATE.parent / function["CodeUri"]).resolve())
    function["Layers"] = [{"Ref": "NoExtensions"}]
    template["Resources"]["NoExtensions"] = {
        "Type": "AWS::Serverless::LayerVersion",
        "Properties": {"ContentUri": str(layer)},
    }
    path = directory / "template.yaml"
    path.write_text(yaml.safe_dump(template))
    return path


# SAM builds an image with the layer for the function: docker.io/samcli/lambda-python:...
LAYER_IMAGES = "docker.io/samcli/lambda-python"


def test_with_the_emulator_s_extensions_switched_off_it_falls_back_to_sync_once(
    sam: Sam, engine: Engine, collector: Collector, hello_event: Path, tmp_path: Path
) -> None:
    template = without_extensions(tmp_path)
    log = tmp_path / "sam.log"
    try:
        run = sam.invoke(
            hello_event,
            commands.AFTER_RESPONSE,
            log_file=log,
            template=template,
            environment={"SAM_CLI_RIE_DEV": "1"},
        )
    finally:
        engine.remove_images(LAYER_IMAGES)

    assert run.returncode == 0, sam.shown(run.log)
    assert run.response["statusCode"] == 200
    # (The emulator says "Extensions disabled by attached layer" as the invocation starts,
    # often before SAM is attached to the container's output: podman 4.3 may not replay it.)
    assert "POST /2020-01-01/extension/register" in run.log
    assert "registered, subscribed to" not in run.log
    warning = "delivery after the response is not available"
    assert run.log.count(warning) == 1, sam.shown(run.log)
    assert "flushing before each response instead" in run.log
    (report,) = reports(run.log)
    assert [event["event_id"] for event in collector.events()] == [
        event_id_from_seed(f"{report.request_id}:0")
    ]

"""Logs-only delivery under the real runtime client: nothing sent from the function, every
event in a log line, delivered by replaying (or forwarding) the log, each once."""

from __future__ import annotations

from pathlib import Path

import pytest

from doow_serverless_dev.collector import Collector

from ..polling import wait_for
from ..replaying import export, replay_log
from .conftest import FUNCTIONS_DIR, TEST_KEY, MakeFunction

pytestmark = pytest.mark.timeout(60)


def test_no_request_leaves_the_function_and_the_log_holds_every_event_once(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path
) -> None:
    function = make_function(
        "delivery_modes.handler",
        code_dir=FUNCTIONS_DIR,
        environment={"DOOW_TRACK_DELIVERY": "logs"},
    )
    results = [function.invoke({"count": 3}) for _ in range(4)]
    assert all(result.ok for result in results)
    assert lambda_collector.stats()["requests"] == 0  # not one request, not even at init

    def lines() -> list[str]:
        return [line for line in function.output if '"doow_unsent"' in line]

    assert wait_for(lambda: len(lines()) == 4), lines()  # the output comes through a pipe
    assert all('"logs-only delivery"' in line for line in lines())
    completed = replay_log(lambda_collector, export(function.output, tmp_path / "log"), TEST_KEY)
    assert completed.returncode == 0, completed.stderr
    assert lambda_collector.stats()["events_stored"] == 12
    # Replayed again (a forwarder retried): nothing is stored twice.
    replay_log(lambda_collector, export(function.output, tmp_path / "log"), TEST_KEY)
    assert lambda_collector.stats()["events_stored"] == 12


def test_a_handler_that_raises_still_has_its_events_logged(
    make_function: MakeFunction, lambda_collector: Collector
) -> None:
    function = make_function(
        "delivery_modes.handler",
        code_dir=FUNCTIONS_DIR,
        environment={"DOOW_TRACK_DELIVERY": "logs"},
    )
    result = function.invoke({"count": 2, "raise": True})
    assert result.error_type == "PaymentDeclined"
    assert wait_for(lambda: any('"logs-only delivery"' in line for line in function.output))
    assert lambda_collector.stats()["requests"] == 0

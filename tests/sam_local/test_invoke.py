"""``sam local invoke`` of the example: the event it tracks reaches the collector once."""

from __future__ import annotations

from pathlib import Path

import pytest

from doow_serverless._core.wire import event_id_from_seed
from doow_serverless_dev.collector import Collector

from .sam import Sam, reports

pytestmark = pytest.mark.timeout(300)


def test_the_event_tracked_in_the_function_arrives_exactly_once(
    sam: Sam, collector: Collector, hello_event: Path
) -> None:
    run = sam.invoke(hello_event)

    assert run.returncode == 0, sam.shown(run.stderr)
    assert run.response["statusCode"] == 200, sam.shown(run.stdout)
    assert run.response["body"] == '{"message":"hello"}'
    (report,) = reports(run.stderr)
    events = collector.events()
    assert len(events) == 1, events
    (event,) = events
    assert (event["metric"], event["quantity"], event["license_id"]) == (
        "api_calls",
        1,
        "lic_example",
    )
    # Its id is derived from the request id the emulator gave the invocation.
    assert event["event_id"] == event_id_from_seed(f"{report.request_id}:0")
    stats = collector.stats()
    assert (stats["accepted"], stats["duplicates"], stats["rejected"]) == (1, 0, 0)
    assert sam.secret not in run.stdout + run.stderr

"""Against a collector that hangs: each invocation still answers before its Timeout, and
the events come back the documented way, ``doow-serverless replay --log`` of the function's
log (here SAM's ``--log-file``: the container, its /tmp and its spool are gone by then)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from doow_serverless._core.wire import event_id_from_seed
from doow_serverless_dev.collector import Collector
from tests.replaying import replay_log

from .conftest import example_environment
from .sam import Sam, reports

pytestmark = pytest.mark.timeout(300)

TIMEOUT_S = 10  # template.yaml's Timeout
FLUSH_TIMEOUT_S = 2.0  # the SDK's default budget for a flush


def stored_once(collector: Collector) -> Counter[str]:
    ids = Counter(event["event_id"] for event in collector.events(limit=100))
    assert set(ids.values()) <= {1}, ids
    return ids


def replay(collector: Collector, log: Path) -> str:
    done = replay_log(collector, log, example_environment()["DOOW_TRACK_API_KEY"])
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("stored", [False, True], ids=["lost", "stored-but-unanswered"])
def test_invoke_answers_in_time_and_replaying_its_log_stores_the_event_once(
    sam: Sam, collector: Collector, hello_event: Path, tmp_path: Path, stored: bool
) -> None:
    collector.set_faults({"then": {"action": "hang", "after_store": stored}})
    log = tmp_path / "sam.log"
    run = sam.invoke(hello_event, log_file=log)

    assert run.returncode == 0, sam.shown(run.log)
    assert run.response["statusCode"] == 200
    (report,) = reports(run.log)
    # The flush gave up at its budget; the handler's answer came long before the Timeout.
    assert report.duration_ms < TIMEOUT_S * 1000 - 250, report
    assert "Task timed out" not in run.log
    assert '"doow_unsent"' in run.log
    assert len(stored_once(collector)) == (1 if stored else 0)

    collector.clear_faults()
    replay(collector, log)

    expected = event_id_from_seed(f"{report.request_id}:0")
    assert stored_once(collector) == Counter({expected: 1})
    stats = collector.stats()
    assert stats["duplicates"] == (1 if stored else 0)
    assert sam.secret not in run.log + run.stdout + run.stderr


def test_start_api_answers_in_time_and_replaying_its_log_stores_each_event_once(
    sam: Sam, collector: Collector, tmp_path: Path
) -> None:
    collector.set_faults({"then": {"action": "hang"}})
    log = tmp_path / "sam.log"
    with sam.start_api(log) as api:
        answers = [api.request("GET", "/hello") for _ in range(3)]
    # SAM stopped: its warm container, and the spool in its /tmp, are gone.

    assert [answer.status for answer in answers] == [200, 200, 200]
    # A warm invocation's answer waits for the flush, cut at its budget, never for the hang.
    assert all(answer.seconds < FLUSH_TIMEOUT_S + 2 for answer in answers[1:]), answers
    logged = log.read_text()
    found = reports(logged)
    assert len(found) == 3, sam.shown(logged)
    assert all(report.duration_ms < TIMEOUT_S * 1000 - 250 for report in found), found
    assert not stored_once(collector)

    collector.clear_faults()
    replay(collector, log)

    expected = {event_id_from_seed(f"{report.request_id}:0") for report in found}
    assert set(stored_once(collector)) == expected
    assert sam.secret not in logged

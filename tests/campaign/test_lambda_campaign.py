"""The Lambda fault campaign at CI size: every kind of fault, nothing lost or doubled, in
each of the SDK's delivery modes for classic Lambda.

Real runtime client, real collector, the real forwarder (under the runtime client) for
what only the logs kept: no mocks. The full runs are
``python -m scripts.campaign.lambda_campaign --invocations 1000 --delivery MODE``
(docs/reliability.md, a section per mode).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scripts.campaign.faults import (
    CLASSIC_KINDS,
    Ending,
    FaultKind,
    Timings,
    minimum_invocations,
    schedule,
)
from scripts.campaign.lambda_campaign import LAMBDA
from scripts.campaign.report import AFTER_RESPONSE_SECTION, OTHER_PLATFORMS, SYNC_SECTION

from .checks import run_and_check

CI_INVOCATIONS = 60
CI_SEED = 20_251_123


def test_the_schedule_covers_every_kind_even_at_its_smallest() -> None:
    smallest = minimum_invocations()
    faults = schedule(smallest, seed=1)
    assert {fault.kind for fault in faults} == set(CLASSIC_KINDS)
    assert sum(fault.span for fault in faults) == smallest
    with pytest.raises(ValueError, match="at least"):
        schedule(smallest - 1, seed=1)


def test_the_schedule_is_a_function_of_its_seed() -> None:
    assert schedule(200, seed=5) == schedule(200, seed=5)
    assert schedule(200, seed=5) != schedule(200, seed=6)
    assert sum(fault.span for fault in schedule(1000, seed=5)) == 1000


def test_only_the_kill_faults_are_meant_to_miss_their_deadline() -> None:
    endings = {fault.kind: fault.ending for fault in schedule(500, seed=2, timings=Timings())}
    assert {kind for kind, ending in endings.items() if ending is not Ending.IN_TIME} == {
        FaultKind.DEADLINE_KILL,
        FaultKind.SIGKILL_HANGING,
        FaultKind.HANDLER_OVERRUN,
        FaultKind.KILL_IN_FLUSH,
        FaultKind.KILL_IN_FLUSH_TMP_LOST,
    }


@pytest.mark.timeout(300)
def test_campaign_loses_nothing_doubles_nothing_and_misses_no_deadline(tmp_path: Path) -> None:
    result, report = run_and_check(LAMBDA, tmp_path, count=CI_INVOCATIONS, seed=CI_SEED)

    assert report.endswith(OTHER_PLATFORMS)  # the links to the other platforms' reports
    assert "- delivery: `sync` (`DOOW_TRACK_DELIVERY`)" in report
    assert result.balance.killed_after_answer == 0
    # The sync run wrote its own section; the others wait for theirs.
    assert report.count(SYNC_SECTION.begins) == 1
    assert f"{AFTER_RESPONSE_SECTION.heading}\n\nNot run yet" in report


@pytest.mark.timeout(300)
def test_after_response_campaign_loses_nothing_and_completes_every_invocation_in_time(
    tmp_path: Path,
) -> None:
    result, report = run_and_check(
        LAMBDA, tmp_path, count=CI_INVOCATIONS, seed=CI_SEED, delivery="after-response"
    )

    assert result.delivery == "after-response"
    assert "--delivery after-response" in result.command
    assert "- delivery: `after-response` (`DOOW_TRACK_DELIVERY`)" in report
    assert f"{SYNC_SECTION.heading}\n\nNot run yet" in report
    # Kills after the response: the extension's flush, cut short by a SIGKILL or by Lambda
    # at the deadline, after the caller had its answer (in sync mode there are none).
    assert result.balance.killed_after_answer > 0

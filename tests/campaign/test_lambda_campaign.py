"""The Lambda fault campaign at CI size: every kind of fault, nothing lost or doubled.

Real runtime client, real collector, real replay command: no mocks. The full run is
``python -m scripts.campaign.lambda_campaign --invocations 1000`` (docs/reliability.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scripts.campaign.faults import Ending, FaultKind, Timings, minimum_invocations, schedule
from scripts.campaign.lambda_campaign import LAMBDA
from scripts.campaign.report import OTHER_PLATFORMS

from .checks import run_and_check

CI_INVOCATIONS = 60
CI_SEED = 20_251_123


def test_the_schedule_covers_every_kind_even_at_its_smallest() -> None:
    smallest = minimum_invocations()
    faults = schedule(smallest, seed=1)
    assert {fault.kind for fault in faults} == set(FaultKind)
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
    _, report = run_and_check(LAMBDA, tmp_path, count=CI_INVOCATIONS, seed=CI_SEED)

    assert report.endswith(OTHER_PLATFORMS)  # the links to the other platforms' reports

"""The Lambda Managed Instances fault campaign at CI size: every kind of fault, nothing lost
or doubled, over four workers under the real multi-concurrent runtime client.

Real parts only: the runtime client forking its workers, the collector, the forwarder
under the runtime client. The full run is ``python -m scripts.campaign.managed_campaign
--invocations 1000 --workers 4`` (docs/reliability.md, its own section).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripts.campaign.command import as_json, summary_lines
from scripts.campaign.faults import Ending, FaultKind
from scripts.campaign.managed_campaign import run_managed_campaign
from scripts.campaign.managed_faults import (
    MANAGED_KINDS,
    managed_schedule,
    minimum_managed_invocations,
)
from scripts.campaign.report import MANAGED_SECTION, SYNC_SECTION

from .checks import assert_every_kind_took_effect, assert_recovered, assert_reported

CI_INVOCATIONS = 80
CI_SEED = 20_251_125


def test_the_schedule_covers_every_kind_in_bursts_and_is_a_function_of_its_seed() -> None:
    smallest = minimum_managed_invocations()
    faults = managed_schedule(smallest, seed=1)
    assert {fault.kind for fault in faults} == set(MANAGED_KINDS)
    assert sum(fault.span for fault in faults) == smallest
    with pytest.raises(ValueError, match="at least"):
        managed_schedule(smallest - 1, seed=1)
    assert managed_schedule(300, seed=5) == managed_schedule(300, seed=5)
    assert managed_schedule(300, seed=5) != managed_schedule(300, seed=6)
    assert sum(fault.span for fault in managed_schedule(1000, seed=5)) == 1000


def test_only_the_process_faults_are_meant_to_end_otherwise_than_in_time() -> None:
    endings = {fault.kind: fault.ending for fault in managed_schedule(500, seed=2)}
    assert {kind for kind, ending in endings.items() if ending is not Ending.IN_TIME} == {
        FaultKind.PAST_DEADLINE,
        FaultKind.WORKER_KILLED,
        FaultKind.WORKER_KILLED_SENDING,
        FaultKind.SHUTDOWN_MID_HANDLER,
    }


@pytest.mark.timeout(240)
def test_managed_campaign_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    report = tmp_path / "reliability.md"
    result = run_managed_campaign(
        CI_INVOCATIONS, CI_SEED, workers=4, workdir=tmp_path / "run", report=report
    )
    balance = result.balance
    explained = "\n".join(summary_lines(result))

    assert_every_kind_took_effect(result, MANAGED_KINDS)
    assert balance.tracked > 0
    assert balance.lost == 0, explained
    assert balance.duplicates == 0, explained
    assert balance.altered == 0, explained
    assert result.leaks.occurrences == 0, explained
    assert balance.stored + balance.rejected == balance.tracked
    assert balance.rejected > 0  # the 207 faults refused events, and none counted as lost
    assert balance.rejected == balance.rejected_confirmed, explained
    # Nothing waited for the endpoint: every invocation meant to answer in time did.
    assert balance.missed_deadlines == 0, explained
    assert balance.failed_invocations == 0, explained
    assert balance.deliberate_kills > 0, explained  # invocations cut by kills or shutdowns
    # The recovery: the JSON-record logs' subscription payloads, to the forwarder; every
    # payload delivered again stores nothing.
    assert_recovered(result, explained)
    assert result.ok, explained
    assert json.loads(json.dumps(as_json(result)))["ok"] is True  # what --json writes

    text = report.read_text()
    assert f"--invocations {CI_INVOCATIONS} --workers 4 --seed {CI_SEED}" in text
    assert text.count(MANAGED_SECTION.begins) == 1
    assert f"{SYNC_SECTION.heading}\n\nNot run yet" in text  # the other sections wait
    assert_reported(result, text)

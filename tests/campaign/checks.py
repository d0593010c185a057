"""What every CI-size campaign must show, whatever the platform: nothing lost or doubled."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.campaign.command import as_json, summary_lines
from scripts.campaign.faults import CLASSIC_KINDS, FaultKind
from scripts.campaign.lambda_campaign import Platform, run_campaign
from scripts.campaign.result import CampaignResult


def run_and_check(
    platform: Platform, tmp_path: Path, *, count: int, seed: int, delivery: str | None = None
) -> tuple[CampaignResult, str]:
    """Run ``platform``'s campaign in ``tmp_path``, check its balance; the result and report."""
    report = tmp_path / "reliability.md"
    result = run_campaign(
        count, seed, platform=platform, delivery=delivery, workdir=tmp_path / "run", report=report
    )
    balance = result.balance
    explained = "\n".join(summary_lines(result))
    assert_every_kind_took_effect(result, CLASSIC_KINDS)
    assert balance.tracked > 0
    assert balance.lost == 0, explained
    assert balance.duplicates == 0, explained
    assert balance.altered == 0, explained
    assert balance.missed_deadlines == 0, explained
    # Every invocation meant to end in time did, flush included, with time to spare.
    assert balance.min_margin is not None and balance.min_margin > 0, explained
    assert balance.failed_invocations == 0, explained
    assert result.leaks.occurrences == 0, explained
    assert balance.stored + balance.rejected == balance.tracked
    assert balance.rejected > 0  # the 207 faults did refuse events, and none counted as lost
    # Every rejection is one the collector answered (its records), not an inference.
    assert balance.rejected == balance.rejected_confirmed, explained
    assert balance.deliberate_kills > 0, explained  # processes really were killed mid-flush
    # New processes were started in the sandboxes after the kills, and adopted their spools.
    assert balance.cold_starts > 3, explained

    assert_recovered(result, explained)
    assert result.unsent_log_lines > 0  # the sandbox without a spool fell back to its log
    assert result.ok, explained
    assert result.platform == platform.name
    assert json.loads(json.dumps(as_json(result)))["ok"] is True  # what --json writes

    text = report.read_text()
    assert text.startswith(platform.page.title + "\n")
    assert f"{platform.count_option} {count} --seed {seed}" in text
    assert_reported(result, text)
    return result, text


def assert_recovered(result: CampaignResult, explained: str) -> None:
    """What only the logs kept was sent by the recovery, and sending it again stored nothing:
    on AWS through the forwarder (several payloads a log, none left in the dead-letter
    queue), elsewhere by ``replay --log`` of the exports, twice."""
    assert result.replayed > 0, explained
    forwarding = result.forwarding
    if forwarding is None:
        assert [run.returncode for run in result.replays] == [0, 0], explained
        assert result.stored_by_replay[1] == 0
        return
    assert result.replays == [] and result.stored_by_replay == []
    assert forwarding.first.invocations >= forwarding.payloads > 0, explained
    # CloudWatch Logs delivers a log in several payloads: the main log here at least.
    assert max(forwarding.payloads_by_stream.values()) > 1, explained
    assert forwarding.stored > 0, explained  # events only the logs kept
    assert forwarding.dead_lettered == 0, explained
    assert forwarding.dead_letter_replay is None, explained
    assert forwarding.again.payloads == forwarding.payloads
    assert forwarding.again.stored == 0, explained


def assert_every_kind_took_effect(result: CampaignResult, kinds: tuple[FaultKind, ...]) -> None:
    """Every kind of fault was scheduled, and seen to take effect (not merely scheduled)."""
    balance = result.balance
    explained = "\n".join(summary_lines(result))
    assert list(balance.faults_by_kind) == [kind.value for kind in kinds], explained
    assert all(balance.faults_by_kind[kind.value] >= 1 for kind in kinds), explained
    never = [kind.value for kind in kinds if balance.effected_by_kind[kind.value] == 0]
    assert never == [], explained


def assert_reported(result: CampaignResult, text: str) -> None:
    """The report says what the run measured."""
    balance = result.balance
    assert f"- platform: {result.platform}\n" in text
    assert "| **lost** | **0** |" in text
    assert "| **duplicates** | **0** |" in text
    assert "| **API key occurrences** (logs, spool, store) | **0** |" in text
    for kind, scheduled in balance.faults_by_kind.items():  # scheduled, took effect, ...
        effected = balance.effected_by_kind[kind]
        assert f"| {kind} | {scheduled} | {effected} | " in text

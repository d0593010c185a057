"""What every CI-size campaign must show, whatever the platform: nothing lost or doubled."""

from __future__ import annotations

from pathlib import Path

from scripts.campaign.faults import FaultKind
from scripts.campaign.lambda_campaign import Platform, run_campaign, summary_lines
from scripts.campaign.result import CampaignResult


def run_and_check(
    platform: Platform, tmp_path: Path, *, count: int, seed: int
) -> tuple[CampaignResult, str]:
    """Run ``platform``'s campaign in ``tmp_path``, check its balance; the result and report."""
    report = tmp_path / "reliability.md"
    result = run_campaign(count, seed, platform=platform, workdir=tmp_path / "run", report=report)
    balance = result.balance
    explained = "\n".join(summary_lines(result))

    # Every kind of fault was scheduled, and seen to take effect (not merely scheduled).
    assert all(balance.faults_by_kind[kind.value] >= 1 for kind in FaultKind), explained
    never = [kind.value for kind in FaultKind if balance.effected_by_kind[kind.value] == 0]
    assert never == [], explained
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

    # Replay found what the killed processes left, and replaying again stored nothing.
    assert [run.returncode for run in result.replays] == [0, 0], explained
    assert result.replayed > 0
    assert result.stored_by_replay[1] == 0
    assert result.unsent_log_lines > 0  # the sandbox without a spool fell back to its log
    assert result.ok, explained
    assert result.platform == platform.name

    text = report.read_text()
    assert text.startswith(platform.title + "\n")
    assert f"{platform.count_option} {count} --seed {seed}" in text
    assert f"- platform: {platform.name}\n" in text
    assert "| **lost** | **0** |" in text
    for kind in FaultKind:  # scheduled, took effect, invocations, what was seen
        scheduled = balance.faults_by_kind[kind.value]
        effected = balance.effected_by_kind[kind.value]
        assert f"| {kind.value} | {scheduled} | {effected} | " in text
    return result, text

"""What every campaign's command line shares: its common options, the work directory, the
summary it prints and the JSON it writes."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .result import CampaignResult


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1, help="default: 1")
    parser.add_argument("--report", type=Path, help="write the Markdown report here")
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", type=Path, help="write the balance as JSON here")


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def check_workdir(workdir: Path | None) -> None:
    """Raise ValueError when ``workdir`` holds anything: the balance counts all it finds."""
    if workdir is not None and workdir.exists() and any(workdir.iterdir()):
        raise ValueError(f"the work directory {workdir} is not empty")


def run_in(
    workdir: Path | None, keep: bool, run: Callable[[Path], CampaignResult]
) -> CampaignResult:
    """``run`` in ``workdir`` (a fresh temporary directory by default, removed afterwards
    unless ``keep`` or the campaign failed)."""
    owned = workdir is None
    root = Path(tempfile.mkdtemp(prefix="doow-campaign-")) if workdir is None else workdir
    root.mkdir(parents=True, exist_ok=True)
    result = run(root)
    if owned and result.ok and not keep:
        shutil.rmtree(root, ignore_errors=True)
    return result


def finish(result: CampaignResult, args: argparse.Namespace) -> int:
    """Print the summary (and the JSON, when asked); 0 when the campaign passed."""
    for line in summary_lines(result):
        print(line)
    if not result.ok or args.keep or args.workdir:
        print(f"work directory: {result.workdir}")
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(result), indent=2) + "\n", encoding="utf-8")
    return 0 if result.ok else 1


def summary_lines(result: CampaignResult) -> list[str]:
    balance = result.balance
    margin = "-" if balance.min_margin is None else f"{balance.min_margin * 1000:.0f} ms"
    recovered = str(result.replayed) if result.recovered else "n/a"
    forwarding = result.forwarding
    if forwarding is None:
        recovery = f"replayed {recovered}"
    else:
        recovery = (
            f"delivered by the forwarder {recovered} ({forwarding.payloads} payloads, "
            f"{forwarding.first.invocations} invocations, {forwarding.first.retries} retries, "
            f"{forwarding.dead_lettered} to the DLQ; again: {forwarding.again.stored} new)"
        )
    effected = sum(balance.effected_by_kind.values())
    scheduled = sum(balance.faults_by_kind.values())
    mode = f" ({result.delivery} delivery)" if result.delivery else ""
    return [
        f"seed {result.seed}: {balance.invocations} invocations{mode} in {result.wall_time:.1f} s",
        f"faults: {effected} of {scheduled} took effect, every kind at least once: "
        f"{'yes' if not balance.never_effected else 'no'}",
        f"tracked {balance.tracked}, stored {balance.stored}, rejected {balance.rejected} "
        f"(confirmed by the collector {balance.rejected_confirmed}), "
        f"duplicates {balance.duplicates}, lost {balance.lost}, {recovery}",
        f"missed deadlines {balance.missed_deadlines}, min margin {margin}, "
        f"key leaks {result.leaks.occurrences}",
        *[f"  {fact}" for fact in result.facts],
        *[f"  lost: {item}" for item in balance.lost_ids],
        *[f"  missed: {item}" for item in balance.missed],
        *[f"  failed: {item}" for item in balance.failed],
        *[f"  no effect: {item}" for item in balance.not_effected],
        *[f"  note: {note}" for note in result.notes],
        "PASSED" if result.ok else "FAILED: " + "; ".join(result.problems),
    ]


def as_json(result: CampaignResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "problems": result.problems,
        "seed": result.seed,
        "delivery": result.delivery,
        "invocations": result.scheduled_invocations,
        "wall_time": result.wall_time,
        "balance": asdict(result.balance),
        "replays": [run.summary for run in result.replays],
        "stored_by_replay": result.stored_by_replay,
        "forwarding": None if result.forwarding is None else asdict(result.forwarding),
        "key_leaks": result.leaks.occurrences,
        "collector": result.collector,
        "facts": result.facts,
    }

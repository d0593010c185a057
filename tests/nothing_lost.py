"""What the three platforms' nothing-lost tests share: the ids their kill-point functions
give a run's events, the store, the reasons the log lines give, and the recovery the docs
give (``replay --log`` of the export), which must leave every event stored exactly once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from doow_serverless._core.wire import event_id_from_seed
from doow_serverless_dev.collector import Collector

from .replaying import replay_log

# Events each kill-point function tracks per request, keyed "key:{run}:{n}".
COUNT = 3


def expected_ids(*runs: str) -> set[str]:
    return {event_id_from_seed(f"key:{run}:{n}") for run in runs for n in range(COUNT)}


def stored(collector: Collector) -> list[str]:
    return [event["event_id"] for event in collector.events(limit=1000)]


def line_reasons(log: Path, run: str) -> list[str]:
    """Why each ``doow_unsent`` line holding events of ``run`` was written, in order."""
    ids = expected_ids(run)
    reasons = []
    for line in log.read_text().splitlines():
        if '"doow_unsent"' in line:
            record: dict[str, Any] = json.loads(line)["doow_unsent"]
            if ids & {event["event_id"] for event in record["events"]}:
                reasons.append(record["reason"])
    return reasons


def assert_whole_after_replay(collector: Collector, log: Path, api_key: str, *runs: str) -> None:
    collector.clear_faults()
    completed = replay_log(collector, log, api_key)
    assert completed.returncode == 0, completed.stderr
    ids = stored(collector)
    assert sorted(ids) == sorted(expected_ids(*runs))  # each once: the store keys on event_id

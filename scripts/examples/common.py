"""What the three example checks share: the smoke run's key, and reading what arrived."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from doow_serverless_dev.collector import Collector

from .tools import REPO

SMOKE_KEY = "dk_example_check_0000"


def sandbox(collector: Collector, tmp: str) -> dict[str, str]:
    """The smoke run's environment: the collector, and a /tmp of its own, as a new sandbox has
    (a spool another process left in this machine's /tmp would otherwise be sent too)."""
    return {"DOOW_TRACK_API_KEY": SMOKE_KEY, "DOOW_TRACK_ENDPOINT": collector.url, "TMPDIR": tmp}


@dataclass(frozen=True)
class Built:
    """An example's artefact: what is deployed, and where its Python distributions are."""

    artefact: Path
    site: Path  # the folder holding the artefact's *.dist-info (for sizes)
    python: str  # the runtime's version, "3.12"
    extras: frozenset[str] = frozenset()


def venv_python(name: str) -> Path:
    return REPO / name / "bin" / "python"


def arrived_once(collector: Collector, metric: str) -> list[str]:
    """Problems unless exactly one event arrived, of ``metric``, with no duplicate."""
    events = collector.events(limit=100)
    stats = collector.stats()
    metrics = Counter(event["measurements"][0]["metric_name"] for event in events)
    if metrics != Counter({metric: 1}) or stats["duplicates"]:
        duplicates = stats["duplicates"]
        return [f"the collector got {dict(metrics)} ({duplicates} duplicates), not one {metric}"]
    return []


def tail(lines: list[str], count: int = 30) -> str:
    return "\n".join(lines[-count:])

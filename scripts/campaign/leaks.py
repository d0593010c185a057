"""Searching everything a campaign captured for the API key."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .replay import ReplayRun


@dataclass
class LeakScan:
    """Occurrences of the key, per place searched; ``files`` and ``texts`` say how much."""

    key: str
    files: int = 0
    texts: int = 0
    found: dict[str, int] = field(default_factory=dict)

    @property
    def occurrences(self) -> int:
        return sum(self.found.values())

    def scan_paths(self, roots: Iterable[Path]) -> None:
        """Every file under each root (a file or a directory), read as bytes."""
        needle = self.key.encode()
        for root in roots:
            paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
            for path in paths:
                try:
                    data = path.read_bytes()
                except OSError:  # removed while we looked (a spool file being sent)
                    continue
                self.files += 1
                self._add(str(path), data.count(needle))

    def scan_replays(self, runs: Iterable[ReplayRun]) -> None:
        """What each replay run printed."""
        for index, run in enumerate(runs, start=1):
            self.scan_run(f"replay {index}", run)

    def scan_run(self, label: str, run: ReplayRun) -> None:
        self.scan_text(f"{label} stdout", run.stdout)
        self.scan_text(f"{label} stderr", run.stderr)

    def scan_text(self, label: str, text: str) -> None:
        self.texts += 1
        self._add(label, text.count(self.key))

    def _add(self, where: str, count: int) -> None:
        if count:
            self.found[where] = self.found.get(where, 0) + count

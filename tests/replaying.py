"""The recovery the docs give, run as a user runs it: ``doow-serverless replay --log`` of
a function's exported log, against a collector."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from doow_serverless_dev.collector import Collector


def export(lines: Iterable[str], path: Path) -> Path:
    """The function's output lines, as a plain log export."""
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def replay_log(collector: Collector, log: Path, api_key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "doow_serverless", "replay", "--log", str(log)],
        env={**os.environ, "DOOW_TRACK_API_KEY": api_key, "DOOW_TRACK_ENDPOINT": collector.url},
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )

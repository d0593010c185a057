"""Running ``doow-serverless replay`` over spool directories and log files, as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .endpoint import Endpoint

REPLAY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ReplayRun:
    command: list[str]  # without the key, which goes in the environment
    returncode: int | None  # None: the command could not run at all
    summary: dict[str, Any] = field(default_factory=dict)  # its --json answer
    stdout: str = ""
    stderr: str = ""
    elapsed: float = 0.0

    @property
    def available(self) -> bool:
        return bool(self.summary)

    def count(self, name: str) -> int:
        value = self.summary.get(name, 0)
        return int(value) if isinstance(value, (int, float)) else 0


def replay(
    *,
    endpoint: str,
    api_key: str,
    spools: Sequence[Path],
    logs: Sequence[Path],
    timeout: float = 10.0,
) -> ReplayRun:
    """Run the CLI in a subprocess (``python -m doow_serverless``); never raises."""
    command = [sys.executable, "-m", "doow_serverless", "replay"]
    for spool in spools:
        command += ["--spool", str(spool)]
    for log in logs:
        command += ["--log", str(log)]
    command += ["--endpoint", endpoint, "--timeout", str(timeout), "--json"]
    environment = {**os.environ, "DOOW_TRACK_API_KEY": api_key}
    started = time.monotonic()
    try:
        finished = subprocess.run(
            command,
            env=environment,
            capture_output=True,
            text=True,
            timeout=REPLAY_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return ReplayRun(command, None, stderr=str(exc), elapsed=time.monotonic() - started)
    return ReplayRun(
        command,
        finished.returncode,
        summary=_summary(finished.stdout),
        stdout=finished.stdout,
        stderr=finished.stderr,
        elapsed=time.monotonic() - started,
    )


def _summary(stdout: str) -> dict[str, Any]:
    """The JSON object the command printed (the last line that is one)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict):
            return document
    try:
        document = json.loads(stdout)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def replay_twice(
    endpoint: Endpoint, api_key: str, logs: Sequence[Path], notes: list[str]
) -> tuple[list[ReplayRun], list[int]]:
    """The recovery the docs give: ``replay --log`` over the platform's log exports, twice
    (the second sends nothing new). The runs, and the events each newly stored."""
    runs: list[ReplayRun] = []
    stored_by_replay: list[int] = []
    for _ in range(2):
        before = endpoint.stored()
        run = replay(endpoint=endpoint.url, api_key=api_key, spools=[], logs=logs)
        runs.append(run)
        stored_by_replay.append(endpoint.stored() - before)
        if not run.available:
            detail = (run.stderr or run.stdout).strip().splitlines()
            notes.append(
                "replay could not run: " + (detail[-1] if detail else f"exit {run.returncode}")
            )
            break
    return runs, stored_by_replay

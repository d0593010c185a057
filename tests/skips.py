"""Every skip is listed with its reason; under ``make test`` only the allowed ones pass.

``make test`` sets ``DOOW_STRICT_SKIPS=1`` for each pytest run. At the end of a run every
skipped test is printed with its reason, and in strict mode a skip whose reason is not in
:data:`ALLOWED` (for this interpreter) fails the run: a missing Chromium, a filesystem
refusing ``chattr``, a runtime that did not build is then a failure with its reason, not a
line lost among the dots. The hooks are in ``tests/conftest.py``.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

import pytest

STRICT_ENV = "DOOW_STRICT_SKIPS"


@dataclass(frozen=True)
class AllowedSkip:
    reason: re.Pattern[str]
    why: str
    applies: bool  # on this interpreter


ALLOWED = (
    AllowedSkip(
        re.compile(r"^could not import 'awslambdaric'"),
        "the Python 3.10 run installs the core only; the Lambda runtime client is in the 3.11 run",
        applies=sys.version_info < (3, 11),
    ),
)


@dataclass(frozen=True)
class Skipped:
    nodeid: str
    reason: str

    @property
    def allowed_by(self) -> AllowedSkip | None:
        for allowed in ALLOWED:
            if allowed.applies and allowed.reason.search(self.reason):
                return allowed
        return None


def strict() -> bool:
    return os.environ.get(STRICT_ENV) == "1"


def skipped(report: pytest.TestReport | pytest.CollectReport) -> Skipped | None:
    """The skip ``report`` tells of, if it tells of one (an expected failure is not a skip)."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return Skipped(report.nodeid, reason.removeprefix("Skipped: "))


def summary(found: list[Skipped]) -> list[str]:
    """One line per skipped test, and what strict mode makes of it."""
    lines = []
    for skip in found:
        allowed = skip.allowed_by
        verdict = f"allowed: {allowed.why}" if allowed else "NOT ALLOWED under make test"
        lines.append(f"SKIPPED {skip.nodeid}: {skip.reason} [{verdict}]")
    return lines


def refused(found: list[Skipped]) -> list[Skipped]:
    """The skips that fail the run: none unless strict."""
    return [skip for skip in found if skip.allowed_by is None] if strict() else []

"""Shared fixtures, and the hooks that report every skip (see ``tests/skips.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from doow_serverless_dev.collector import Collector

from . import skips

CollectorFactory = Callable[..., Collector]

_skipped: list[skips.Skipped] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    found = skips.skipped(report)
    if found is not None:
        _skipped.append(found)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    found = skips.skipped(report)
    if found is not None:
        _skipped.append(found)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if skips.refused(_skipped) and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _skipped:
        return
    terminalreporter.section("skipped tests, each with its reason")
    for line in skips.summary(_skipped):
        terminalreporter.line(line)
    refused = skips.refused(_skipped)
    if refused:
        terminalreporter.line(
            f"FAILED: {len(refused)} skip(s) not allowed under make test "
            f"({skips.STRICT_ENV}=1); the allowed ones are in tests/skips.py",
            red=True,
        )


@pytest.fixture(autouse=True)
def own_temporary_directory(tmp_path_factory: pytest.TempPathFactory, monkeypatch: Any) -> None:
    """Each test its own TMPDIR, so its own default spool (``$TMPDIR/doow-spool``).

    Otherwise what one test's tracker leaves in the spool, the next test's would send.
    """
    monkeypatch.setenv("TMPDIR", str(tmp_path_factory.mktemp("tmpdir")))
    # And its own state directory: a program off serverless platforms leaves what it could
    # not deliver there at exit, never in the real home of whoever runs the tests.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
def collector() -> Iterator[Collector]:
    """A local collector on 127.0.0.1 (free port, in-memory store, dev-mode keys)."""
    with Collector() as running:
        yield running


@pytest.fixture
def collector_factory() -> Iterator[CollectorFactory]:
    """Start collectors with custom options (``Collector`` keywords); all stopped afterwards."""
    started: list[Collector] = []

    def start(**options: Any) -> Collector:
        running = Collector(**options).start()
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        running.stop()

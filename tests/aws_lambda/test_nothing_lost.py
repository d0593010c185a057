"""Nothing lost, under the real runtime client: however little time is left when a handler
returns, and wherever a SIGKILL lands in a flush, with ``/tmp`` lost afterwards, every
event is delivered or in the function's log, and ``replay`` of that log gives it back.

Each test ends as a reclaimed sandbox does: the process killed, its ``/tmp`` (the spool)
gone. What is left is the log (the function's stdout, as CloudWatch keeps it) and the
collector's store; replaying the log must make the store whole, each event once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from doow_serverless_dev.collector import Collector
from doow_serverless_dev.lambda_local import InvocationResult

from ..nothing_lost import COUNT, assert_whole_after_replay, expected_ids, stored
from ..replaying import replay_log
from .conftest import FUNCTIONS_DIR, TEST_KEY, MakeFunction

pytestmark = pytest.mark.timeout(120)

TIMEOUT_S = 1.5


class Sandbox:
    """One execution environment: its function, its /tmp, and what it printed."""

    def __init__(self, make_function: MakeFunction, root: Path, **environment: str) -> None:
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True)
        self.log = root / "function.log"
        self.function = make_function(
            "kill_points.handler",
            code_dir=FUNCTIONS_DIR,
            timeout=TIMEOUT_S,
            environment={"TMPDIR": str(self.tmp), **environment},
        )

    def invoke(self, run: str, **event: Any) -> InvocationResult:
        return self.function.invoke({"run": run, "count": COUNT, **event})

    def reclaim(self) -> None:
        """Kill the process and lose /tmp, as Lambda reclaims an environment."""
        self.function.stop()
        shutil.rmtree(self.tmp)
        self.log.write_text("".join(line + "\n" for line in self.function.output))


def kill_when(sandbox: Sandbox, ready: Callable[[], bool], run: str) -> InvocationResult:
    """Invoke, and SIGKILL the process as soon as ``ready()``; the invocation's result."""
    results: list[InvocationResult] = []
    thread = threading.Thread(target=lambda: results.append(sandbox.invoke(run)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not ready():
        assert time.monotonic() < deadline, "the moment to kill at never came"
        time.sleep(0.001)
    pid = sandbox.function.pid
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    thread.join(15)
    return results[0]


# -- a handler that returns with little or no time left --------------------------------------


@pytest.mark.parametrize("leave_ms", [200, 100], ids=["200ms-left", "100ms-left"])
def test_events_tracked_with_less_than_the_reserve_left_are_logged_before_the_answer(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path, leave_ms: int
) -> None:
    # The usage is known at the end of the work, which ends inside the reserve (250 ms):
    # no time to send, and the deadline watch passed before these events existed.
    lambda_collector.set_faults({"then": {"action": "hang"}})
    sandbox = Sandbox(make_function, tmp_path)
    run = f"near-{uuid.uuid4()}"
    result = sandbox.invoke(run, leave_ms=leave_ms, track_first=False)
    assert result.status == "success", result  # answered, in time
    assert result.margin is not None and result.margin > 0
    # Killed right after the answer: what it wrote before is all the export will hold.
    sandbox.reclaim()
    logged_before_the_end = "\n".join(sandbox.function.output)
    assert all(event_id in logged_before_the_end for event_id in expected_ids(run))
    assert stored(lambda_collector) == []
    assert_whole_after_replay(lambda_collector, sandbox.log, TEST_KEY, run)


def test_events_of_a_handler_that_uses_all_its_time_are_logged_before_the_kill(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path
) -> None:
    # No time left at all: the handler works to its deadline and is killed there. What it
    # tracked before was written by the deadline watch while it still ran.
    lambda_collector.set_faults({"then": {"action": "hang"}})
    sandbox = Sandbox(make_function, tmp_path)
    run = f"none-left-{uuid.uuid4()}"
    assert sandbox.invoke(run, leave_ms=-10_000).status == "timeout"
    logged_before_the_end = "\n".join(sandbox.function.output)
    assert all(event_id in logged_before_the_end for event_id in expected_ids(run))
    sandbox.reclaim()
    assert stored(lambda_collector) == []
    assert_whole_after_replay(lambda_collector, sandbox.log, TEST_KEY, run)


# -- a SIGKILL at each step of a flush, then a fresh /tmp ------------------------------------


@pytest.mark.parametrize("step", ["before-spool", "after-spool"])
def test_a_kill_inside_the_flush_then_a_lost_tmp_loses_nothing(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path, step: str
) -> None:
    sandbox = Sandbox(make_function, tmp_path, KILL_AT=step)
    run = f"{step}-{uuid.uuid4()}"
    result = sandbox.invoke(run)
    assert result.status == "crashed", result
    assert lambda_collector.stats()["requests"] == 0  # killed before any request
    sandbox.reclaim()
    assert_whole_after_replay(lambda_collector, sandbox.log, TEST_KEY, run)


def test_a_kill_with_the_request_in_flight_then_a_lost_tmp_loses_nothing(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path
) -> None:
    lambda_collector.set_faults({"script": [{"action": "hang"}]})
    sandbox = Sandbox(make_function, tmp_path)
    run = f"in-flight-{uuid.uuid4()}"
    result = kill_when(sandbox, lambda: lambda_collector.faults()["position"] >= 1, run)
    assert result.status == "crashed", result
    sandbox.reclaim()
    assert stored(lambda_collector) == []
    assert_whole_after_replay(lambda_collector, sandbox.log, TEST_KEY, run)


def test_a_kill_after_the_server_stored_but_before_it_answered_counts_nothing_twice(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path
) -> None:
    lambda_collector.set_faults({"script": [{"action": "hang", "after_store": True}]})
    sandbox = Sandbox(make_function, tmp_path)
    run = f"stored-{uuid.uuid4()}"
    result = kill_when(sandbox, lambda: lambda_collector.stats()["events_stored"] >= COUNT, run)
    assert result.status == "crashed", result
    sandbox.reclaim()
    assert_whole_after_replay(lambda_collector, sandbox.log, TEST_KEY, run)
    assert lambda_collector.stats()["duplicates"] == COUNT  # the replay's copies, counted once


# -- an adopting process killed before its first flush ends ---------------------------------


def test_an_adopting_process_killed_before_its_first_flush_ends_loses_nothing(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path
) -> None:
    # Without write-ahead lines, the first process's batch is only in the spool when it
    # dies; the process that adopts it must give it a line before anything else can fail.
    lambda_collector.set_faults({"then": {"action": "hang"}})
    sandbox = Sandbox(make_function, tmp_path, DOOW_TRACK_LOG_AHEAD="false")
    first = f"first-{uuid.uuid4()}"
    result = kill_when(sandbox, lambda: _hangs(lambda_collector) >= 1, first)
    assert result.status == "crashed", result
    assert expected_ids(first).isdisjoint("\n".join(sandbox.function.output))
    # /tmp is kept: the runtime restarts in the same sandbox and adopts the spool at init;
    # that process too is killed, with its first request (the adopted batch) in flight.
    second = f"second-{uuid.uuid4()}"
    result = kill_when(sandbox, lambda: _hangs(lambda_collector) >= 2, second)
    assert result.status == "crashed", result
    sandbox.reclaim()  # and now /tmp is gone too
    lambda_collector.clear_faults()
    completed = replay_log(lambda_collector, sandbox.log, TEST_KEY)
    # The first run's events come back from the adopting process's lines. (The second
    # run's own events had no line, write-ahead being off, and were lost with /tmp: the
    # cost of the quiet mode, which the docs state; replay says nothing is missing from
    # what it found.)
    assert completed.returncode == 0, completed.stderr
    assert set(stored(lambda_collector)) == expected_ids(first)


def _hangs(collector: Collector) -> int:
    return int(collector.stats().get("requests_by_status", {}).get("hang", 0))

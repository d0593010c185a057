"""Nothing lost, under the real Azure library worker: however little time is left when a
function returns, wherever a SIGKILL lands in its flush, and whichever of two concurrent
invocations the worker dies for, with ``/tmp`` lost afterwards, every event is delivered
or in the function's log, and ``replay`` of that log gives it back.

Each test ends as an instance is recycled: the worker killed, its ``/tmp`` (the spool)
gone. What is left is the log (the worker's output, which the host sends on to
Application Insights) and the collector's store; replaying the log must make the store
whole, each event once. Each runs for a ``def`` function (run and flushed on the worker's
thread pool) and an ``async def`` one (run on its event loop, flushed in a helper thread).
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from doow_serverless_dev.azure_local import InvocationResult, LocalFunctionApp, http_request
from doow_serverless_dev.collector import Collector

from ..nothing_lost import COUNT, assert_whole_after_replay, expected_ids, line_reasons, stored
from .conftest import APPS, TEST_KEY, MakeApp

pytestmark = pytest.mark.timeout(120)

APP_DIR = APPS / "kill_points"
TIMEOUT_S = 1.5  # host.json's functionTimeout, which the SDK reads as well
ROUTES = ["kill_points_sync", "kill_points_async"]


class Instance:
    """One Functions instance: its worker, its /tmp, and what the worker wrote."""

    def __init__(self, make_app: MakeApp, root: Path, route: str, **environment: str) -> None:
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True)
        self.log = root / "function.log"
        self.route = route
        # Threads enough for two sync invocations at once (one overrunning).
        self.app: LocalFunctionApp = make_app(
            APP_DIR,
            environment={
                "TMPDIR": str(self.tmp),
                "PYTHON_THREADPOOL_THREAD_COUNT": "4",
                **environment,
            },
        )
        assert self.app.timeout == TIMEOUT_S

    def invoke(self, run: str, **query: object) -> InvocationResult:
        parameters = {key: str(value) for key, value in {"run": run, **query}.items()}
        url = f"http://localhost/api/{self.route}"
        return self.app.invoke(self.route, http_request("GET", url, query=parameters))

    def reclaim(self) -> None:
        """Kill the worker and lose /tmp, as an instance is recycled."""
        self.app.kill()  # SIGKILL; every line the dead worker wrote is read
        shutil.rmtree(self.tmp)
        self.log.write_text("".join(line + "\n" for line in self.app.output))


def kill_when(instance: Instance, ready: Callable[[], bool], run: str) -> InvocationResult:
    """Invoke, and SIGKILL the worker as soon as ``ready()``; the invocation's result."""
    results: list[InvocationResult] = []
    thread = threading.Thread(target=lambda: results.append(instance.invoke(run)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not ready():
        assert time.monotonic() < deadline, "the moment to kill at never came"
        time.sleep(0.001)
    instance.app.kill()
    thread.join(15)
    return results[0]


def hangs(collector: Collector) -> int:
    """Requests the collector holds without answering (a ``hang`` step), so far."""
    return int(collector.stats().get("requests_by_status", {}).get("hang", 0))


# -- a function that returns with little or no time left -------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("leave_ms", [200, 100], ids=["200ms-left", "100ms-left"])
def test_events_tracked_with_less_than_the_reserve_left_are_logged_before_the_answer(
    make_app: MakeApp, azure_collector: Collector, tmp_path: Path, route: str, leave_ms: int
) -> None:
    # The usage is known at the end of the work, which ends inside the reserve (250 ms):
    # no time to send, and the deadline watch passed before these events existed.
    azure_collector.set_faults({"then": {"action": "hang"}})
    instance = Instance(make_app, tmp_path, route)
    run = f"near-{uuid.uuid4()}"
    result = instance.invoke(run, leave_ms=leave_ms, track_first=0)
    # Answered before the function timeout, at which the host would have ended the worker.
    # Tolerance: none; the margin is the host's own count, from when it sent the invocation.
    assert result.status == "success", result
    assert result.margin is not None and result.margin > 0
    assert result.output_lines is not None
    logged_before_the_answer = "\n".join(instance.app.output[: result.output_lines])
    assert all(event_id in logged_before_the_answer for event_id in expected_ids(run))
    instance.reclaim()
    assert stored(azure_collector) == []
    assert_whole_after_replay(azure_collector, instance.log, TEST_KEY, run)


@pytest.mark.parametrize("route", ROUTES)
def test_events_of_a_function_that_uses_all_its_time_are_logged_before_the_kill(
    make_app: MakeApp, azure_collector: Collector, tmp_path: Path, route: str
) -> None:
    # No time left at all: the function works past its timeout and the host ends the
    # worker there. What it tracked before was written by the deadline watch meanwhile.
    azure_collector.set_faults({"then": {"action": "hang"}})
    instance = Instance(make_app, tmp_path, route)
    run = f"none-left-{uuid.uuid4()}"
    assert instance.invoke(run, leave_ms=-10_000).status == "timeout"
    assert instance.app.timeouts == 1
    instance.reclaim()
    assert all(event_id in instance.log.read_text() for event_id in expected_ids(run))
    assert stored(azure_collector) == []
    assert_whole_after_replay(azure_collector, instance.log, TEST_KEY, run)


# -- a SIGKILL at each step of a flush, then a fresh /tmp ------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("step", ["before-spool", "after-spool"])
def test_a_kill_inside_the_flush_then_a_lost_tmp_loses_nothing(
    make_app: MakeApp, azure_collector: Collector, tmp_path: Path, route: str, step: str
) -> None:
    instance = Instance(make_app, tmp_path, route, KILL_AT=step)
    run = f"{step}-{uuid.uuid4()}"
    result = instance.invoke(run)
    assert result.status == "crashed", result
    assert azure_collector.stats()["requests"] == 0  # killed before any request
    instance.reclaim()
    assert_whole_after_replay(azure_collector, instance.log, TEST_KEY, run)


@pytest.mark.parametrize("route", ROUTES)
def test_a_kill_with_the_request_in_flight_then_a_lost_tmp_loses_nothing(
    make_app: MakeApp, azure_collector: Collector, tmp_path: Path, route: str
) -> None:
    azure_collector.set_faults({"script": [{"action": "hang"}]})
    instance = Instance(make_app, tmp_path, route)
    run = f"in-flight-{uuid.uuid4()}"
    result = kill_when(instance, lambda: azure_collector.faults()["position"] >= 1, run)
    assert result.status == "crashed", result
    instance.reclaim()
    assert stored(azure_collector) == []
    assert_whole_after_replay(azure_collector, instance.log, TEST_KEY, run)


@pytest.mark.parametrize("route", ROUTES)
def test_a_kill_after_the_server_stored_but_before_it_answered_counts_nothing_twice(
    make_app: MakeApp, azure_collector: Collector, tmp_path: Path, route: str
) -> None:
    azure_collector.set_faults({"script": [{"action": "hang", "after_store": True}]})
    instance = Instance(make_app, tmp_path, route)
    run = f"stored-{uuid.uuid4()}"
    result = kill_when(instance, lambda: azure_collector.stats()["events_stored"] >= COUNT, run)
    assert result.status == "crashed", result
    instance.reclaim()
    assert_whole_after_replay(azure_collector, instance.log, TEST_KEY, run)
    assert azure_collector.stats()["duplicates"] == COUNT  # the replay's copies, counted once


# -- one worker, two invocations at once -----------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_a_flush_in_flight_when_another_invocation_overruns_loses_nothing(
    make_app: MakeApp, azure_collector: Collector, tmp_path: Path, route: str
) -> None:
    # B works past its timeout (1.5 s) and the host ends the worker there. A comes 0.5 s
    # after B, returns at once, and its flush (until A's own timeout less the reserve,
    # 1.75 s after B started) waits on a hanging collector: A has not answered when the
    # worker dies for B. The 0.5 s only orders the two; arriving later, A flushes later.
    azure_collector.set_faults({"then": {"action": "hang"}})
    instance = Instance(make_app, tmp_path, route)
    first, second = f"answers-{uuid.uuid4()}", f"overruns-{uuid.uuid4()}"
    results: dict[str, InvocationResult] = {}

    def invoke(run: str, **query: object) -> None:
        results[run] = instance.invoke(run, **query)

    # B tracks as its work ends, which it never reaches: A's batch is the only one.
    b = threading.Thread(
        target=invoke, args=(second,), kwargs={"leave_ms": -10_000, "track_first": 0}
    )
    b.start()
    time.sleep(0.5)
    a = threading.Thread(target=invoke, args=(first,))
    a.start()
    a.join(15)
    b.join(15)

    assert results[second].status == "timeout"  # B: the host ended the worker ...
    assert instance.app.timeouts == 1
    assert results[first].status == "crashed"  # ... with A's flush not over
    assert hangs(azure_collector) == 1  # A's request, held by the collector
    instance.reclaim()
    # A's line was written before A's request (write-ahead), not by B's deadline watch.
    assert line_reasons(instance.log, first) == ["write-ahead"]
    assert stored(azure_collector) == []
    assert_whole_after_replay(azure_collector, instance.log, TEST_KEY, first)

"""Nothing lost, under Vercel's real runtime: however little time is left when a request
is answered, wherever a SIGKILL lands in its flush (handed to ``wait_until``, after the
response), and whichever of two concurrent requests the instance dies for, with ``/tmp``
lost afterwards, every event is delivered or in the function's log, and ``replay`` of that
log gives it back.

Each test ends as Vercel reclaims an instance: the process killed, its ``/tmp`` (the
spool) gone. What is left is the log (what the function wrote, as the runtime reports it
over its IPC socket, which is what Vercel keeps) and the collector's store; replaying the
log must make the store whole, each event once. Each runs for the handler class and the
ASGI app of ``functions/api/kill_points.py``: their flushes go through different paths
(the handler's thread, the event loop) before both reach ``wait_until``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from doow_serverless_dev.collector import Collector
from doow_serverless_dev.vercel_local import VercelFunction, VercelResponse

from ..nothing_lost import COUNT, assert_whole_after_replay, expected_ids, line_reasons, stored
from .conftest import TEST_KEY, MakeFunction

pytestmark = pytest.mark.timeout(120)

ENTRYPOINT = "api/kill_points.py"
DEADLINE_S = 1.5
KINDS = ["handler", "app"]  # the handler class; the ASGI app


class Instance:
    """One Vercel instance: its function, its /tmp, and what it logged."""

    def __init__(
        self, make_function: MakeFunction, root: Path, variable: str, **environment: str
    ) -> None:
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True)
        self.log = root / "function.log"
        self.function: VercelFunction = make_function(
            ENTRYPOINT,
            variable=variable,
            max_duration=DEADLINE_S,
            environment={"TMPDIR": str(self.tmp), **environment},
        )
        self.function.start()  # the cold start is not the requests' time

    def request(self, run: str, *, deadline: float = DEADLINE_S, **query: object) -> VercelResponse:
        path = "/?" + "&".join(f"{key}={value}" for key, value in {"run": run, **query}.items())
        return self.function.request("GET", path, deadline=deadline)

    def reclaim(self) -> None:
        """Kill the process and lose /tmp, as Vercel reclaims an instance."""
        pid = self.function.pid
        if pid is not None:  # SIGKILL, not the SIGTERM stop() starts with
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.function.stop()  # and every line the dead process wrote is read
        shutil.rmtree(self.tmp)
        self.log.write_text(self.function.log_text() + "\n")


def kill_when(instance: Instance, ready: Callable[[], bool], run: str) -> VercelResponse:
    """Send a request, and SIGKILL the instance as soon as ``ready()``; its response."""
    responses: list[VercelResponse] = []
    thread = threading.Thread(target=lambda: responses.append(instance.request(run)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not ready():
        assert time.monotonic() < deadline, "the moment to kill at never came"
        time.sleep(0.001)
    pid = instance.function.pid
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    thread.join(15)
    return responses[0]


def hangs(collector: Collector) -> int:
    """Requests the collector holds without answering (a ``hang`` step), so far."""
    return int(collector.stats().get("requests_by_status", {}).get("hang", 0))


def crashed(response: VercelResponse) -> bool:
    """The instance died before the invocation ended, and not at its deadline."""
    return response.ended_at is None and not response.timed_out


# -- a request answered with little or no time left ------------------------------------------


@pytest.mark.parametrize("variable", KINDS)
@pytest.mark.parametrize("leave_ms", [200, 100], ids=["200ms-left", "100ms-left"])
def test_events_tracked_with_less_than_the_reserve_left_are_logged_before_the_end(
    make_function: MakeFunction,
    vercel_collector: Collector,
    tmp_path: Path,
    variable: str,
    leave_ms: int,
) -> None:
    # The usage is known at the end of the work, which ends inside the reserve (250 ms):
    # no time to send, and the deadline watch passed before these events existed.
    vercel_collector.set_faults({"then": {"action": "hang"}})
    instance = Instance(make_function, tmp_path, variable)
    run = f"near-{uuid.uuid4()}"
    response = instance.request(run, leave_ms=leave_ms, track_first=0)
    # Answered, and the invocation (its wait_until flush too) ended before the deadline.
    # Tolerance: none; the harness kills the instance at the deadline.
    assert response.status == 200 and response.ok, response.error
    assert response.json()["remaining_ms"] < 250
    assert response.margin is not None and response.margin > 0
    # The runtime reports "end" on the IPC socket after every log message of the request.
    logged_before_the_end = instance.function.log_text()
    assert all(event_id in logged_before_the_end for event_id in expected_ids(run))
    instance.reclaim()
    assert stored(vercel_collector) == []
    assert_whole_after_replay(vercel_collector, instance.log, TEST_KEY, run)


@pytest.mark.parametrize("variable", KINDS)
def test_events_of_a_request_that_uses_all_its_time_are_logged_before_the_kill(
    make_function: MakeFunction, vercel_collector: Collector, tmp_path: Path, variable: str
) -> None:
    # No time left at all: the handler works past its deadline and the instance is killed
    # there. What it tracked before was written by the deadline watch while it still ran.
    vercel_collector.set_faults({"then": {"action": "hang"}})
    instance = Instance(make_function, tmp_path, variable)
    run = f"none-left-{uuid.uuid4()}"
    assert instance.request(run, leave_ms=-10_000).timed_out
    assert instance.function.kills == 1
    instance.reclaim()
    assert all(event_id in instance.log.read_text() for event_id in expected_ids(run))
    assert stored(vercel_collector) == []
    assert_whole_after_replay(vercel_collector, instance.log, TEST_KEY, run)


# -- a SIGKILL at each step of a flush, then a fresh /tmp ------------------------------------


@pytest.mark.parametrize("variable", KINDS)
@pytest.mark.parametrize("step", ["before-spool", "after-spool"])
def test_a_kill_inside_the_flush_then_a_lost_tmp_loses_nothing(
    make_function: MakeFunction,
    vercel_collector: Collector,
    tmp_path: Path,
    variable: str,
    step: str,
) -> None:
    instance = Instance(make_function, tmp_path, variable, KILL_AT=step)
    run = f"{step}-{uuid.uuid4()}"
    response = instance.request(run)
    assert crashed(response), response
    assert vercel_collector.stats()["requests"] == 0  # killed before any request
    instance.reclaim()
    assert_whole_after_replay(vercel_collector, instance.log, TEST_KEY, run)


@pytest.mark.parametrize("variable", KINDS)
def test_a_kill_as_the_flush_handed_to_wait_until_begins_loses_nothing(
    make_function: MakeFunction, vercel_collector: Collector, tmp_path: Path, variable: str
) -> None:
    # The campaign's finding: the response is out, the flush handed to wait_until is
    # about to start, and the instance dies. The events were kept before the hand-over.
    instance = Instance(make_function, tmp_path, variable, KILL_AT="flush-begins")
    run = f"flush-begins-{uuid.uuid4()}"
    response = instance.request(run)
    assert crashed(response), response
    assert response.responded_at is not None  # the whole response came first
    assert json.loads(response.body)["tracked"] == COUNT
    assert vercel_collector.stats()["requests"] == 0
    instance.reclaim()
    assert_whole_after_replay(vercel_collector, instance.log, TEST_KEY, run)


@pytest.mark.parametrize("variable", KINDS)
def test_a_kill_with_the_request_in_flight_then_a_lost_tmp_loses_nothing(
    make_function: MakeFunction, vercel_collector: Collector, tmp_path: Path, variable: str
) -> None:
    vercel_collector.set_faults({"script": [{"action": "hang"}]})
    instance = Instance(make_function, tmp_path, variable)
    run = f"in-flight-{uuid.uuid4()}"
    response = kill_when(instance, lambda: vercel_collector.faults()["position"] >= 1, run)
    assert crashed(response), response
    instance.reclaim()
    assert stored(vercel_collector) == []
    assert_whole_after_replay(vercel_collector, instance.log, TEST_KEY, run)


@pytest.mark.parametrize("variable", KINDS)
def test_a_kill_after_the_server_stored_but_before_it_answered_counts_nothing_twice(
    make_function: MakeFunction, vercel_collector: Collector, tmp_path: Path, variable: str
) -> None:
    vercel_collector.set_faults({"script": [{"action": "hang", "after_store": True}]})
    instance = Instance(make_function, tmp_path, variable)
    run = f"stored-{uuid.uuid4()}"
    response = kill_when(instance, lambda: vercel_collector.stats()["events_stored"] >= COUNT, run)
    assert crashed(response), response
    instance.reclaim()
    assert_whole_after_replay(vercel_collector, instance.log, TEST_KEY, run)
    assert vercel_collector.stats()["duplicates"] == COUNT  # the replay's copies, counted once


# -- one instance, two requests at once (Fluid compute) --------------------------------------


@pytest.mark.parametrize("variable", KINDS)
def test_a_flush_in_flight_when_another_request_overruns_loses_nothing(
    make_function: MakeFunction, vercel_collector: Collector, tmp_path: Path, variable: str
) -> None:
    # A answers at once and its flush (2 s: min(flush timeout, 3 s - reserve)) waits on a
    # hanging collector. B, sent to the same instance once A's request is held there,
    # works past its 1 s deadline, and the platform kills the instance at it: about a
    # second before A's flush would have given up, with A's request in flight.
    vercel_collector.set_faults({"then": {"action": "hang"}})
    instance = Instance(make_function, tmp_path, variable)
    first, second = f"answers-{uuid.uuid4()}", f"overruns-{uuid.uuid4()}"
    responses: dict[str, VercelResponse] = {}

    def send(run: str, deadline: float, **query: object) -> None:
        responses[run] = instance.request(run, deadline=deadline, **query)

    a = threading.Thread(target=send, args=(first, 3.0))
    a.start()
    waited = time.monotonic() + 10
    while hangs(vercel_collector) < 1:  # A's request reached the collector
        assert time.monotonic() < waited, "A's flush never sent its request"
        time.sleep(0.001)
    b = threading.Thread(target=send, args=(second, 1.0), kwargs={"leave_ms": -10_000})
    b.start()
    a.join(15)
    b.join(15)

    assert responses[second].timed_out  # B: killed at its deadline ...
    assert instance.function.kills == 1
    answered = responses[first]  # ... with A answered, and its flush not over
    assert answered.responded_at is not None and json.loads(answered.body)["tracked"] == COUNT
    assert crashed(answered), answered
    assert hangs(vercel_collector) == 1  # A's request, held by the collector
    assert instance.function.cold_starts == 1  # one instance served both
    instance.reclaim()
    # A's line was written before A's request (write-ahead), not by B's deadline watch.
    assert line_reasons(instance.log, first) == ["write-ahead"]
    assert stored(vercel_collector) == []
    assert_whole_after_replay(vercel_collector, instance.log, TEST_KEY, first, second)

"""Lambda Managed Instances under the real multi-concurrent runtime client.

``awslambdaric`` forks ``AWS_LAMBDA_MAX_CONCURRENCY`` workers that poll the same Runtime
API at once; they share ``/tmp``; nothing is frozen, a deadline kills nothing, and the
environment ends with SIGTERM. The SDK detects the mode and delivers in the background:
each invocation's events are kept (log line, spool) before its response, then sent by a
thread of the worker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from doow_serverless._core.wire import event_id_from_seed
from doow_serverless_dev.collector import Collector
from doow_serverless_dev.lambda_local import InvocationResult, LocalFunction

from ..polling import wait_for
from ..replaying import replay_log
from .conftest import FUNCTIONS_DIR, TEST_KEY, MakeFunction

pytestmark = pytest.mark.timeout(120)
WORKERS = 4


def managed(make_function: MakeFunction, tmp_path: Path, **environment: str) -> LocalFunction:
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    function = make_function(
        "delivery_modes.handler",
        code_dir=FUNCTIONS_DIR,
        timeout=1.5,
        concurrency=WORKERS,
        environment={"TMPDIR": str(tmp), **environment},
    )
    function.start()
    return function


def invoke_many(function: LocalFunction, times: int, **event: Any) -> list[InvocationResult]:
    with ThreadPoolExecutor(2 * WORKERS) as pool:
        return list(pool.map(lambda _: function.invoke({"count": 3, **event}), range(times)))


def stored(collector: Collector) -> Counter[str]:
    return Counter(event["event_id"] for event in collector.events(limit=1000))


def test_concurrent_invocations_across_the_workers_store_every_event_once(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path
) -> None:
    function = managed(make_function, tmp_path)
    results = invoke_many(function, 40, sleep_ms=20)
    assert all(result.ok for result in results), [r.body for r in results if not r.ok]
    assert len({result.payload["pid"] for result in results}) == WORKERS
    assert wait_for(lambda: lambda_collector.stats()["events_stored"] == 120)
    assert set(stored(lambda_collector).values()) == {1}


def test_no_response_waits_for_a_hanging_endpoint(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path
) -> None:
    lambda_collector.set_faults({"then": {"action": "hang"}})
    function = managed(make_function, tmp_path)
    results = invoke_many(function, 12)
    assert all(result.ok for result in results)
    # Each answer is back before any request to the endpoint could have been (tolerance:
    # 250 ms of a loaded machine; the endpoint never answers).
    assert max(result.duration or 0 for result in results) < 0.25, results
    lambda_collector.clear_faults()
    assert wait_for(lambda: lambda_collector.stats()["events_stored"] == 36)


def test_a_worker_killed_with_events_kept_is_adopted_by_a_live_one_exactly_once(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path
) -> None:
    lambda_collector.set_faults({"then": {"action": "hang"}})
    function = managed(make_function, tmp_path)
    first = function.invoke({"count": 3}, request_id="req-of-a-worker-that-dies")
    assert first.ok
    os.kill(first.payload["pid"], signal.SIGKILL)  # its batch spooled, its request hanging
    # The runtime client starts no other worker in its place.
    assert wait_for(lambda: len(function.worker_pids()) == WORKERS - 1, timeout=5)
    lambda_collector.clear_faults()
    dead_ones = {event_id_from_seed(f"req-of-a-worker-that-dies:{n}") for n in range(3)}
    # The live workers keep serving; one of them adopts the dead one's spool while the
    # environment lives (not at a start: no process starts any more).
    assert wait_for(
        lambda: (
            invoke_many(function, 4, count=1) is not None
            and dead_ones <= set(stored(lambda_collector))
        ),
        timeout=30,
    )
    assert set(stored(lambda_collector).values()) == {1}
    assert any("adopted from a process that died" in line for line in function.output)


def test_no_invocation_is_handed_to_a_worker_killed_while_it_waited(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path
) -> None:
    function = managed(make_function, tmp_path)
    assert all(result.ok for result in invoke_many(function, 2 * WORKERS))
    # Idle, asking for their next invocation: their requests stay open when they die.
    for pid in function.worker_pids()[1:]:
        os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: len(function.worker_pids()) == 1)
    results = invoke_many(function, 2 * WORKERS)
    assert [result.status for result in results] == ["success"] * 2 * WORKERS


def as_json_records(output: list[str]) -> str:
    """The output as Managed Instances log it: every line a JSON record with the request id
    beside it (a line the function wrote as JSON itself is kept as written)."""
    records = []
    for line in output:
        if line.startswith("{"):
            records.append(line)
        else:
            record = {"level": "INFO", "message": line, "requestId": str(uuid.uuid4())}
            records.append(json.dumps(record))
    return "".join(record + "\n" for record in records)


@pytest.mark.parametrize(
    ("export", "endpoint"),
    [
        ("as written", {"latency_ms": 300}),  # in flight, answered within the grace
        ("json records", {"latency_ms": 300}),
        ("json records", {"then": {"action": "hang"}}),  # never answered: all by replay
    ],
)
def test_sigterm_with_events_in_flight_loses_nothing(
    make_function: MakeFunction,
    lambda_collector: Collector,
    tmp_path: Path,
    export: str,
    endpoint: dict[str, Any],
) -> None:
    lambda_collector.set_faults(endpoint)
    function = managed(make_function, tmp_path)
    assert all(result.ok for result in invoke_many(function, 8))
    function.stop(grace=2.0)  # SIGTERM now, with requests in flight
    if "latency_ms" in endpoint:  # answered within the grace: delivered before the end
        assert lambda_collector.stats()["events_stored"] == 24
    assert any('"doow_unsent"' in line for line in function.output)  # some were kept
    log = tmp_path / "export.log"
    if export == "json records":
        log.write_text(as_json_records(function.output))
    else:
        log.write_text("".join(line + "\n" for line in function.output))
    shutil.rmtree(tmp_path / "tmp")  # the environment, and its /tmp, are gone
    lambda_collector.clear_faults()
    completed = replay_log(lambda_collector, log, TEST_KEY)
    assert completed.returncode == 0, completed.stderr
    assert lambda_collector.stats()["events_stored"] == 24
    assert set(stored(lambda_collector).values()) == {1}


def test_after_response_is_not_registered_here_and_init_never_hangs(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path
) -> None:
    function = managed(make_function, tmp_path, DOOW_TRACK_DELIVERY="after-response")
    results = invoke_many(function, 8)
    assert all(result.ok for result in results)
    assert wait_for(lambda: lambda_collector.stats()["events_stored"] == 24)

    def warnings() -> list[str]:
        return [line for line in function.output if "Managed Instances refuse" in line]

    # Once per worker process, at its init (a slow worker may still be importing).
    assert wait_for(lambda: len(warnings()) == WORKERS), warnings()
    time.sleep(0.2)
    assert len(warnings()) == WORKERS


def test_an_invocation_past_its_deadline_is_not_killed_and_its_events_still_go(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path
) -> None:
    function = managed(make_function, tmp_path)
    result = function.invoke({"count": 3, "sleep_ms": 2000}, request_id=str(uuid.uuid4()))
    assert result.ok  # answered after its deadline: nothing killed it
    assert result.payload["remaining_ms"] == 0  # the runtime client's clamp, no negative budget
    assert result.margin is not None and result.margin < 0
    assert wait_for(lambda: lambda_collector.stats()["events_stored"] == 3)


def test_each_workers_output_is_read_apart_so_two_workers_lines_never_mix(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path
) -> None:
    function = managed(make_function, tmp_path)
    assert all(result.ok for result in invoke_many(function, 80, announce=True))
    announced = [re.findall(r'\{"tracked": \d+, "pid": \d+\}', line) for line in function.output]
    assert sum(len(found) for found in announced) == 80
    pids = [{json.loads(one)["pid"] for one in found} for found in announced]
    assert [found for found in pids if len(found) > 1] == []


def test_a_shutdown_gives_the_workers_the_grace_then_kills_every_one(
    make_function: MakeFunction, tmp_path: Path
) -> None:
    function = make_function(
        "stubborn.handler", code_dir=FUNCTIONS_DIR, timeout=1.5, concurrency=WORKERS
    )
    function.start()
    assert wait_for(lambda: len(function.worker_pids()) == WORKERS)
    workers = function.worker_pids()
    function.stop(grace=0.5)  # the runtime client's parent ends at SIGTERM; they ignore it
    assert not [pid for pid in workers if _alive(pid)]


def test_sigterm_while_handlers_work_keeps_what_they_tracked(
    make_function: MakeFunction, lambda_collector: Collector, tmp_path: Path
) -> None:
    lambda_collector.set_faults({"then": {"action": "hang"}})
    function = managed(make_function, tmp_path)
    with ThreadPoolExecutor(WORKERS) as pool:
        answers = [
            pool.submit(function.invoke, {"count": 3, "sleep_ms": 5000, "announce": True})
            for _ in range(WORKERS)
        ]
        # Every handler tracked its events and is still at work: nothing kept them yet.
        assert wait_for(lambda: sum('{"tracked"' in line for line in function.output) == WORKERS)
        function.stop(grace=2.0)
        assert not any(answer.result().ok for answer in answers)
    log = tmp_path / "export.log"
    log.write_text(as_json_records(function.output))
    shutil.rmtree(tmp_path / "tmp")  # the environment, and its /tmp, are gone
    lambda_collector.clear_faults()
    completed = replay_log(lambda_collector, log, TEST_KEY)
    assert completed.returncode == 0, completed.stderr
    assert lambda_collector.stats()["events_stored"] == 3 * WORKERS
    assert set(stored(lambda_collector).values()) == {1}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

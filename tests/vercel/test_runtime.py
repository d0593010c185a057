"""The wrapped functions under Vercel's real Python runtime (vercel-runtime) in a subprocess.

The test plays only Vercel's platform side (vercel_local: the IPC socket, requests with the
x-vercel-internal-* headers and deadline, the kill at the deadline); the function is found,
detected and served by the runtime's own vc_init, and its events go to the real collector
over 127.0.0.1. An invocation is over when the runtime reports ``end``, which it does after
the work handed to ``wait_until``.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from doow_serverless_dev.collector import Collector
from doow_serverless_dev.vercel_local import VercelResponse

from ..polling import wait_for
from ..replaying import export, replay_log
from .conftest import FUNCTIONS_DIR, KINDS, TEST_KEY, MakeFunction

pytestmark = pytest.mark.timeout(90)

KIND_NAMES = list(KINDS)


def path_for(kind: str, events: int = 1) -> str:
    return KINDS[kind][1].format(n=events)


def stored_ids(collector: Collector) -> Counter[str]:
    return Counter(event["event_id"] for event in collector.events(limit=1000))


def concurrently(*calls: tuple[float, object]) -> list[VercelResponse]:
    """Run (delay, call) pairs on threads, each after its delay; their responses in order."""
    results: list[VercelResponse | None] = [None] * len(calls)

    def run(index: int, delay: float, call: object) -> None:
        time.sleep(delay)
        results[index] = call()  # type: ignore[operator]

    threads = [
        threading.Thread(target=run, args=(index, delay, call))
        for index, (delay, call) in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(result is not None for result in results)
    return results  # type: ignore[return-value]


def test_the_runtime_detects_each_wrapped_object_as_its_kind(vercel_python: Path) -> None:
    """The runtime's own checks (vc_init's handler test, resolver.detect_app_type)."""
    script = """
import json, sys
from http.server import BaseHTTPRequestHandler
from vercel_runtime.resolver import detect_app_type, import_module
found = {}
kinds = [("handler_class", "handler"), ("wsgi_flask", "app"), ("asgi_fastapi", "app")]
for name, variable in kinds:
    obj = getattr(import_module(name, f"api/{name}.py"), variable)
    if variable == "handler":  # what vc_init checks before serving a handler class
        found[name] = ["handler", isinstance(obj, type) and issubclass(obj, BaseHTTPRequestHandler)]
    else:
        kind, app = detect_app_type(obj, name, variable)
        found[name] = [kind, app is obj]
print(json.dumps(found))
"""
    completed = subprocess.run(
        [str(vercel_python), "-c", script],
        cwd=FUNCTIONS_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "VERCEL": "1", "TMPDIR": os.environ["TMPDIR"]},
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == {
        "handler_class": ["handler", True],
        "wsgi_flask": ["wsgi", True],  # the wrapper itself is what the runtime calls
        "asgi_fastapi": ["asgi", True],
    }


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_event_is_stored_once_over_one_warm_connection(
    kind: str, make_function: MakeFunction, vercel_collector: Collector
) -> None:
    function = make_function(KINDS[kind][0])
    responses = [function.request("GET", path_for(kind, events=2)) for _ in range(5)]

    assert [response.status for response in responses] == [200] * 5
    assert all(response.ok for response in responses), [r.error for r in responses]
    assert [response.cold_start for response in responses] == [True] + [False] * 4
    assert responses[0].text == "tracked 2"
    stats = vercel_collector.stats()
    assert stats["events_stored"] == 10
    assert stats["duplicates"] == 0
    assert stats["requests"] == 5  # one flush per request ...
    assert stats["connections"] == 1  # ... over the connection the first one opened
    assert function.cold_starts == 1


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_the_response_reaches_the_client_before_the_flush(
    kind: str, make_function: MakeFunction, vercel_collector: Collector
) -> None:
    function = make_function(KINDS[kind][0], environment={"DOOW_TRACK_DEBUG": "true"})
    function.request("GET", path_for(kind))  # cold start and first connection out of the way
    vercel_collector.set_faults({"latency_ms": 400})

    response = function.request("GET", path_for(kind))

    assert response.ok, response.error
    assert "the flush runs after the response (wait_until)" in function.log_text()
    assert response.after_response is not None
    # The invocation went on after the whole response had arrived, for as long as the
    # collector took to answer the flush (400 ms; tolerance 50 ms for timer granularity).
    assert response.after_response >= 0.35
    assert vercel_collector.stats()["events_stored"] == 2  # stored before the invocation ended


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_a_hanging_collector_never_makes_a_request_miss_its_deadline(
    kind: str, make_function: MakeFunction, vercel_collector: Collector
) -> None:
    function = make_function(KINDS[kind][0])
    assert function.request("GET", path_for(kind)).ok  # healthy, warm, connected
    vercel_collector.set_faults({"then": {"action": "hang"}})

    hung = function.request("GET", path_for(kind), deadline=1.5)

    # Tolerance: none on the deadline itself. The harness kills the instance at the exact
    # deadline, so an end after it is a timeout; the response must also have arrived.
    assert hung.status == 200
    assert hung.ok, hung.error
    assert hung.margin is not None and hung.margin > 0
    assert function.kills == 0

    vercel_collector.clear_faults()
    recovered = function.request("GET", path_for(kind))

    assert recovered.ok
    assert not recovered.cold_start  # the same warm instance answered every time
    ids = stored_ids(vercel_collector)
    assert len(ids) == 3  # the first, the one kept during the outage, and this one
    assert set(ids.values()) == {1}


def test_without_a_deadline_from_the_runtime_max_duration_bounds_the_flush(
    make_function: MakeFunction, vercel_collector: Collector
) -> None:
    function = make_function(KINDS["asgi"][0], environment={"DOOW_TRACK_VERCEL_MAX_DURATION": "1"})
    assert function.request("GET", path_for("asgi")).ok
    vercel_collector.set_faults({"then": {"action": "hang"}})

    response = function.request("GET", path_for("asgi"), deadline=5.0, deadline_header=False)

    assert response.ok, response.error
    assert response.ended_at is not None
    took = response.ended_at - response.started_at
    # The flush may run until max_duration - reserve = 0.75 s after the request started.
    # Tolerance: up to max_duration itself (1 s), for a loaded machine.
    assert 0.6 <= took < 1.0


@pytest.mark.parametrize("kind", ["handler", "asgi"])
def test_one_request_never_waits_on_another_flush_beyond_its_own_deadline(
    kind: str, make_function: MakeFunction, vercel_collector: Collector
) -> None:
    function = make_function(KINDS[kind][0], environment={"DOOW_TRACK_FLUSH_TIMEOUT": "1500"})
    assert function.request("GET", path_for(kind)).ok
    vercel_collector.set_faults({"then": {"action": "hang"}})

    long, short = concurrently(
        (0.0, lambda: function.request("GET", path_for(kind), deadline=5.0)),
        # Starts while the first one's flush hangs, and has 1 s.
        (0.3, lambda: function.request("GET", path_for(kind), deadline=1.0)),
    )

    assert short.ok, short.error
    assert short.margin is not None and short.margin > 0
    assert long.ok, long.error
    assert function.kills == 0
    vercel_collector.clear_faults()
    assert function.request("GET", path_for(kind)).ok
    ids = stored_ids(vercel_collector)
    assert len(ids) == 4
    assert set(ids.values()) == {1}


def test_the_event_loop_keeps_serving_while_flushes_run(
    make_function: MakeFunction, vercel_collector: Collector
) -> None:
    function = make_function(KINDS["asgi"][0])
    assert function.request("GET", "/ping").ok
    vercel_collector.set_faults({"latency_ms": 1000})

    *tracked, ping = concurrently(
        (0.0, lambda: function.request("GET", path_for("asgi"))),
        (0.0, lambda: function.request("GET", path_for("asgi"))),
        (0.0, lambda: function.request("GET", path_for("asgi"))),
        (0.3, lambda: function.request("GET", "/ping")),  # while the three flushes wait
    )

    assert all(response.ok for response in [*tracked, ping])
    assert ping.text == "pong"
    # A flush blocking the loop would hold the ping until the collector answered (1 s).
    # Tolerance: half of that, for a loaded machine.
    assert ping.duration is not None and ping.duration < 0.5
    assert vercel_collector.stats()["events_stored"] == 3


def test_the_same_vercel_id_twice_is_counted_once(
    make_function: MakeFunction, vercel_collector: Collector
) -> None:
    function = make_function(KINDS["wsgi"][0])
    first = function.request("GET", path_for("wsgi", events=2))
    again = function.request("GET", path_for("wsgi", events=2), vercel_id=first.vercel_id)
    other = function.request("GET", path_for("wsgi", events=2))

    assert first.ok and again.ok and other.ok
    stats = vercel_collector.stats()
    assert stats["events_stored"] == 4
    assert stats["duplicates"] == 2


def test_events_of_a_streamed_body_and_of_a_background_task_are_in_their_request(
    make_function: MakeFunction, vercel_collector: Collector
) -> None:
    wsgi = make_function(KINDS["wsgi"][0])
    streamed = wsgi.request("GET", "/stream?n=3")
    asgi = make_function(KINDS["asgi"][0])
    background = asgi.request("GET", "/background")

    assert streamed.ok and background.ok
    assert streamed.text.count("chunk") == 3
    # Stored by the time each invocation ended: the flush followed the body and the task.
    metrics = Counter(
        event["measurements"][0]["metric_name"] for event in vercel_collector.events()
    )
    assert metrics == {"chunks": 3, "api_calls": 1, "after_response": 1}


def test_the_api_key_never_appears_in_the_function_logs(
    make_function: MakeFunction, collector_factory: object
) -> None:
    refusing: Collector = collector_factory(api_keys=["dk_only_this_key_0000"])  # type: ignore[operator]
    function = make_function(
        KINDS["asgi"][0], collector=refusing, environment={"DOOW_TRACK_DEBUG": "true"}
    )
    response = function.request("GET", path_for("asgi"))

    assert response.ok
    logs = function.log_text()
    assert "refused (401)" in logs  # the failure is reported ...
    assert TEST_KEY not in logs  # ... without the key
    assert TEST_KEY[-4:] in logs  # only its last characters, as a hint


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_in_the_runtimes_lambda_mode_events_are_stored_before_lambda_gets_the_answer(
    kind: str, vercel_python: Path, vercel_collector: Collector
) -> None:
    """Without the IPC, vc_handler answers Lambda once it has read the response, and
    Lambda may freeze the process right then: the response is held until the flush."""
    vercel_collector.set_faults({"latency_ms": 300})
    entry, path = KINDS[kind]
    completed = subprocess.run(
        [
            str(vercel_python),
            str(Path(__file__).with_name("lambda_mode_driver.py")),
            str(FUNCTIONS_DIR / entry),
            "handler" if kind == "handler" else "app",
            vercel_collector.url,
            path.format(n=2),
            "2",
        ],
        cwd=FUNCTIONS_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "TMPDIR": os.environ["TMPDIR"],  # this test's own, so its own spool
            "DOOW_TRACK_API_KEY": TEST_KEY,
            "DOOW_TRACK_ENDPOINT": vercel_collector.url,
        },
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    lines = [
        json.loads(line)
        for line in completed.stdout.splitlines()
        if line.startswith('{"status"')  # the driver's lines, not the SDK's
    ]

    assert [line["status"] for line in lines] == [200, 200]
    assert [line["stored_on_return"] for line in lines] == [2, 4]


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_logs_only_delivery_sends_nothing_and_its_lines_replay_each_event_once(
    kind: str, make_function: MakeFunction, vercel_collector: Collector, tmp_path: Path
) -> None:
    function = make_function(KINDS[kind][0], environment={"DOOW_TRACK_DELIVERY": "logs"})
    responses = [function.request("GET", path_for(kind, events=2)) for _ in range(3)]

    assert all(response.ok for response in responses), [r.error for r in responses]
    assert vercel_collector.stats()["requests"] == 0

    def lines() -> list[str]:
        return [line for line in function.log_text().splitlines() if '"doow_unsent"' in line]

    assert wait_for(lambda: len(lines()) == 3), lines()
    assert all('"logs-only delivery"' in line for line in lines())
    completed = replay_log(vercel_collector, export(lines(), tmp_path / "drain.log"), TEST_KEY)
    assert completed.returncode == 0, completed.stderr
    assert vercel_collector.stats()["events_stored"] == 6
    assert set(stored_ids(vercel_collector).values()) == {1}

"""A function app with several worker processes (``FUNCTIONS_WORKER_PROCESS_COUNT`` > 1).

The host starts that many workers of the same app on one instance; they share its temporary
directory, so they share the spool. Played here as two real library workers given the same
``TMPDIR``: a worker killed with events spooled leaves them to the live one, which adopts
them while it serves (it never starts again), each batch exactly once; a live worker never
takes the other's.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from doow_serverless._client.sender import ADOPT_EVERY_S
from doow_serverless._core.wire import event_id_from_seed
from doow_serverless_dev.azure_local import LocalFunctionApp, TriggerInput, http_request
from doow_serverless_dev.collector import Collector

from .conftest import MakeApp

pytestmark = pytest.mark.timeout(90)


def hello(events: int) -> TriggerInput:
    return http_request("GET", "http://localhost/api/sync_hello", query={"events": str(events)})


def workers(make_app: MakeApp, tmp_path: Path) -> tuple[LocalFunctionApp, LocalFunctionApp]:
    shared = tmp_path / "instance-tmp"
    shared.mkdir()
    environment = {
        "TMPDIR": str(shared),
        "FUNCTIONS_WORKER_PROCESS_COUNT": "2",
        "DOOW_TRACK_FLUSH_TIMEOUT": "500",
    }
    return make_app(environment=environment), make_app(environment=environment)


def stored(collector: Collector) -> Counter[str]:
    return Counter(event["event_id"] for event in collector.events(limit=1000))


def test_a_dead_workers_spool_is_adopted_by_the_live_one_once(
    make_app: MakeApp, azure_collector: Collector, tmp_path: Path
) -> None:
    first, second = workers(make_app, tmp_path)
    azure_collector.set_faults({"then": {"action": "hang"}})
    lost_with_it = first.invoke("sync_hello", hello(3), invocation_id="inv-first")
    assert lost_with_it.ok  # answered within the flush budget; its batch spooled
    # While the first worker lives, the second never takes its batch, however often it
    # flushes (each flush past ADOPT_EVERY_S looks for dead processes' batches).
    azure_collector.clear_faults()
    time.sleep(ADOPT_EVERY_S + 0.5)
    assert second.invoke("sync_hello", hello(1), invocation_id="inv-live").ok
    assert set(stored(azure_collector)) == {event_id_from_seed("inv-live:0")}

    first.kill()  # its spool directory is orphaned; no worker starts in its place
    time.sleep(ADOPT_EVERY_S + 0.5)
    for n in range(3):
        assert second.invoke("sync_hello", hello(1), invocation_id=f"inv-after-{n}").ok

    expected = {event_id_from_seed(f"inv-first:{n}") for n in range(3)}
    expected |= {event_id_from_seed("inv-live:0")}
    expected |= {event_id_from_seed(f"inv-after-{n}:0") for n in range(3)}
    counts = stored(azure_collector)
    assert set(counts) == expected
    assert set(counts.values()) == {1}
    adopted = [line for line in second.output if "adopted from a process that died" in line]
    assert adopted, "the adoption is logged, for the log forwarder and replay"

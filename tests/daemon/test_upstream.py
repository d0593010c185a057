"""Upstream down, then back: everything the daemon acknowledged arrives, once. Its bounds:
a full spool answers 429 with Retry-After; memory holds at most max_queue_size events."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from doow_serverless_dev.collector import Collector

from .conftest import Upstream
from .helpers import (
    CLIENT_KEY,
    DaemonProcess,
    daemon,
    expected_licenses,
    finish,
    post,
    start_client,
    stored,
    wait_until,
)


def batch_body(name: str, start: int, count: int, padding: int = 0) -> bytes:
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "license_id": f"lic-{name}-{n}",
            "occurred_at": "2026-11-22T10:15:30.123Z",
            "measurements": [{"metric_name": "api_calls", "quantity": 1}],
            "metadata": {"padding": "x" * padding},
        }
        for n in range(start, start + count)
    ]
    return json.dumps({"batch_id": str(uuid.uuid4()), "events": events}).encode()


def test_a_stopped_upstream_then_back_gets_everything_once(tmp_path: Path) -> None:
    db = tmp_path / "collector.sqlite3"
    first = Collector(db_path=db).start()
    port = first.port
    sizes = {"ours-1": 2000, "official-1": 1000}
    with daemon(tmp_path, first.url) as running:
        first.stop()  # upstream gone: connections refused
        reports = finish(
            [start_client(name.split("-")[0], running.url, name, n) for name, n in sizes.items()]
        )
        # The clients were answered (202) by the daemon, which holds their events.
        assert reports[0]["delivered"] == sizes["ours-1"], reports[0]
        assert reports[1]["errors"] == [], reports[1]
        held = running.status()
        assert held["accepted"] == sum(sizes.values())
        assert held["forwarded"] == 0
        wait_until(lambda: running.status()["last_error"] is not None, 10, "a failed forward")
        assert "not delivered" in running.status()["last_error"]
        with Collector(port=port, db_path=db):  # back, on the same address
            running.wait_drained()
        assert running.stop() == 0, running.log
    rows = stored(db)
    assert set(rows) == expected_licenses("ours-1", 2000) | expected_licenses("official-1", 1000)
    assert max(rows.values()) == 1


def test_a_failing_upstream_then_back_gets_everything_once(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.collector.set_faults({"then": {"status": 503}})
    with daemon(tmp_path, upstream.url) as running:
        [report] = finish([start_client("ours", running.url, "ours-1", 3000)])
        assert report["delivered"] == 3000
        time.sleep(1.5)  # the daemon retried meanwhile, and was refused
        assert upstream.collector.stats()["requests_by_status"].get("503", 0) > 0
        upstream.collector.clear_faults()
        running.wait_drained()
        assert running.stop() == 0
    rows = stored(upstream.db)
    assert set(rows) == expected_licenses("ours-1", 3000)
    assert max(rows.values()) == 1


def test_a_full_spool_answers_429_with_retry_after_and_a_client_keeps_its_events(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.collector.set_faults({"then": {"status": 503}})
    with daemon(tmp_path, upstream.url, "--spool-max-bytes", "150000") as running:
        answers = [
            post(f"{running.url}/telemetry/events", batch_body("raw", n * 50, 50))
            for n in range(20)
        ]
        statuses = [status for status, _, _ in answers]
        assert statuses[0] == 202
        assert 429 in statuses, statuses
        status, headers, body = answers[statuses.index(429)]
        assert headers["Retry-After"] == "2"
        assert body["errorClass"] == "TooManyRequests"
        assert running.status()["spool_bytes"] <= 150000
        # A batch larger than the whole spool could never be taken: 413, which clients split.
        big = batch_body("big", 0, 400, padding=300)
        assert 150_000 < len(big) < 460_800
        status, _, body = post(f"{running.url}/telemetry/events", big)
        assert (status, body["errorClass"]) == (413, "PayloadTooLarge")
        assert "more than the daemon's spool holds" in body["message"]
        # An SDK client sent into the full daemon keeps its events and sends them again.
        client = start_client("ours", running.url, "ours-1", 1500)
        time.sleep(2.0)
        upstream.collector.clear_faults()
        [report] = finish([client])
        assert report["delivered"] == 1500, report
        running.wait_drained()
        assert running.status()["refused_batches"] > 2
        assert running.stop() == 0
    rows = stored(upstream.db)
    taken = {f"lic-raw-{n}" for n in range(50 * statuses.count(202))}
    assert set(rows) == taken | expected_licenses("ours-1", 1500)
    assert max(rows.values()) == 1


def test_memory_holds_at_most_max_queue_size_events_the_rest_waits_on_disk(
    upstream: Upstream, tmp_path: Path
) -> None:
    upstream.collector.set_faults({"then": {"status": 503}})
    running = DaemonProcess(tmp_path, upstream.url, "--max-queue-size", "1000")
    try:
        running.start()
        for n in range(20):  # 150 events each: 6 fit in memory, a 7th would not
            status, _, _ = post(f"{running.url}/telemetry/events", batch_body("raw", n * 150, 150))
            assert status == 202
        time.sleep(1.5)  # the forwarder failed and read back from disk meanwhile
        held = running.status()
        assert held["accepted"] == 3000
        assert held["held_in_memory"] <= 1000
        assert held["batches_on_disk_only"] >= 13
        assert held["spool_files"] == 20
        # A restart adopts the files without reading them all into memory.
        assert running.stop() == 0
        running.start()
        assert running.status()["held_in_memory"] <= 1000
        upstream.collector.clear_faults()
        running.wait_drained()
        assert running.stop() == 0
    finally:
        running.close()
    rows = stored(upstream.db)
    assert set(rows) == expected_licenses("raw", 3000)
    assert max(rows.values()) == 1
    assert CLIENT_KEY not in running.log

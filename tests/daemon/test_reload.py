"""SIGHUP: the config file is read again (a rotated key, a new endpoint) while clients send;
nothing queued is lost or sent twice, and a config that cannot be used keeps the old one."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from doow_serverless_dev.collector import Collector

from .conftest import Upstream
from .helpers import DaemonProcess, expected_licenses, finish, start_client, stored, wait_until

KEY_1 = "dk_rotated_key_one_000000001"
KEY_2 = "dk_rotated_key_two_000000002"


def write_config(path: Path, **settings: Any) -> None:
    path.write_text(json.dumps({"flushAt": 20, "flushInterval": 200, **settings}))


def test_sighup_during_traffic_loses_nothing_and_doubles_nothing(
    upstream: Upstream, tmp_path: Path
) -> None:
    config = tmp_path / "doow-track.json"
    # Events wait in the daemon between forwards (5000 of them, or 1.5 s), and requests are
    # slow: reloads find batches queued, and in flight.
    settings = {"apiKey": KEY_1, "endpoint": upstream.url, "flushAt": 5000, "flushInterval": 1500}
    write_config(config, **settings)
    running = DaemonProcess(tmp_path, None, "--config", str(config), key=None)
    upstream.collector.set_faults({"latency_ms": 30})
    sizes = {"ours-1": 6000, "ours-2": 6000, "official-1": 3000}
    try:
        running.start()
        clients = [start_client(n.split("-")[0], running.url, n, c) for n, c in sizes.items()]
        # Reloads while the clients send, and on after they are done (the daemon still holds
        # their last events for up to flushInterval): at least 10 in all.
        reloads = during_traffic = held_at_reload = 0
        while (sending := any(client.poll() is None for client in clients)) or reloads < 10:
            time.sleep(0.1)
            held_at_reload += running.status()["held_in_memory"] > 0
            running.signal(signal.SIGHUP)
            reloads += 1
            during_traffic += sending
        finish(clients)
        running.wait_drained()
        assert running.stop() == 0
    finally:
        running.close()
    assert during_traffic >= 3
    assert held_at_reload >= 3
    assert running.log.count("settings reloaded") >= 5
    rows = stored(upstream.db)
    expected = set().union(*(expected_licenses(name, count) for name, count in sizes.items()))
    assert set(rows) == expected
    assert max(rows.values()) == 1


def test_a_rotated_key_is_picked_up_and_what_the_old_one_could_not_send_is_sent_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "collector.sqlite3"
    with Collector(db_path=db, api_keys=[KEY_2]) as collector:  # the old key is revoked
        config = tmp_path / "doow-track.json"
        write_config(config, apiKey=KEY_1, endpoint=collector.url)
        running = DaemonProcess(tmp_path, None, "--config", str(config), key=None)
        try:
            running.start()
            finish([start_client("ours", running.url, "ours-1", 1000)])
            wait_until(lambda: "401" in (running.status()["last_error"] or ""), 10, "the 401")
            assert running.status()["held_in_memory"] == 1000
            write_config(config, apiKey=KEY_2, endpoint=collector.url)
            running.signal(signal.SIGHUP)
            running.wait_drained()
            finish([start_client("ours", running.url, "ours-2", 500)])
            running.wait_drained()
            assert running.stop() == 0
        finally:
            running.close()
    rows = stored(db)
    assert set(rows) == expected_licenses("ours-1", 1000) | expected_licenses("ours-2", 500)
    assert max(rows.values()) == 1
    for key in (KEY_1, KEY_2):
        assert key not in running.log
    assert "dk_…0001" in running.log and "dk_…0002" in running.log  # hints only


def test_a_new_endpoint_gets_what_follows_and_no_event_goes_to_both(
    upstream: Upstream, tmp_path: Path
) -> None:
    second_db = tmp_path / "second.sqlite3"
    with Collector(db_path=second_db) as second:
        config = tmp_path / "doow-track.json"
        write_config(config, apiKey=KEY_1, endpoint=upstream.url)
        running = DaemonProcess(tmp_path, None, "--config", str(config), key=None)
        try:
            running.start()
            finish([start_client("ours", running.url, "before", 1500)])
            running.wait_drained()
            upstream.collector.set_faults({"then": {"status": 503}})
            [held] = finish([start_client("official", running.url, "held", 700)])
            assert held["errors"] == [], held
            write_config(config, apiKey=KEY_1, endpoint=second.url)
            running.signal(signal.SIGHUP)
            finish([start_client("ours", running.url, "after", 1500)])
            running.wait_drained()
            assert running.stop() == 0
        finally:
            running.close()
    first_rows, second_rows = stored(upstream.db), stored(second_db)
    assert set(first_rows) == expected_licenses("before", 1500)
    assert set(second_rows) == expected_licenses("held", 700) | expected_licenses("after", 1500)
    assert max(first_rows.values()) == max(second_rows.values()) == 1


def test_a_config_that_cannot_be_used_is_reported_and_the_running_one_stays(
    upstream: Upstream, tmp_path: Path
) -> None:
    config = tmp_path / "doow-track.json"
    write_config(config, apiKey=KEY_1, endpoint=upstream.url)
    running = DaemonProcess(tmp_path, None, "--config", str(config), key=None)
    try:
        running.start()
        for bad in ('{"apiKey": ', json.dumps({"apiKey": "not-a-doow-key"})):
            config.write_text(bad)
            running.signal(signal.SIGHUP)
            wait_until(lambda: running.log.count("cannot be used") >= 1, 10, "the report")
        config.write_text(json.dumps({"apiKey": KEY_1, "endpoint": upstream.url, "colour": 1}))
        running.signal(signal.SIGHUP)
        wait_until(lambda: running.log.count("cannot be used") >= 3, 10, "three reports")
        finish([start_client("ours", running.url, "ours-1", 800)])
        running.wait_drained()
        assert running.stop() == 0
    finally:
        running.close()
    assert "unknown key(s) 'colour'" in running.log
    assert "not-a-doow-key" not in running.log
    assert set(stored(upstream.db)) == expected_licenses("ours-1", 800)

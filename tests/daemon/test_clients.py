"""Client processes of both SDKs send through the daemon (a real process) to the collector."""

from __future__ import annotations

from pathlib import Path

from .conftest import Upstream
from .helpers import KEY, daemon, expected_licenses, finish, start_client, stored


def test_processes_of_both_sdks_send_through_the_daemon_and_each_event_counts_once(
    upstream: Upstream, tmp_path: Path
) -> None:
    sizes = {"ours-1": 3000, "ours-2": 3000, "official-1": 1500, "official-2": 1500}
    with daemon(tmp_path, upstream.url) as running:
        clients = [
            start_client(name.split("-")[0], running.url, name, count)
            for name, count in sizes.items()
        ]
        reports = dict(zip(sizes, finish(clients), strict=True))
        status = running.wait_drained()
        assert running.stop() == 0, running.log
    rows = stored(upstream.db)
    expected = set().union(*(expected_licenses(name, count) for name, count in sizes.items()))
    assert set(rows) == expected  # every event arrived
    assert max(rows.values()) == 1  # and none twice
    assert status["accepted"] == status["forwarded"] == sum(sizes.values())
    for name in ("ours-1", "ours-2"):
        report = reports[name]
        assert report["delivered"] == report["tracked"] == sizes[name], report
        assert report["dropped"] == report["pending"] == 0, report
    for name in ("official-1", "official-2"):
        assert reports[name]["errors"] == [], reports[name]
    # The daemon forwarded in requests of many client batches, not one request each.
    assert upstream.collector.stats()["requests"] < status["accepted"] / 100
    assert KEY not in running.log

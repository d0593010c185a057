"""SIGKILL of the daemon at random moments while clients send: nothing acknowledged is lost,
nothing counts twice. Each restart adopts what the killed daemon left in its spool."""

from __future__ import annotations

import random
import time
from pathlib import Path

from .conftest import Upstream
from .helpers import DaemonProcess, expected_licenses, finish, start_client, stored, stored_ids

SEED = 13


def test_sigkill_at_random_moments_loses_nothing_acknowledged_and_doubles_nothing(
    upstream: Upstream, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    # A slow upstream keeps batches in the daemon's spool and in flight when it is killed.
    upstream.collector.set_faults({"latency_ms": 20})
    running = DaemonProcess(tmp_path, upstream.url)
    sizes = {"ours-1": 4000, "ours-2": 4000, "raw-1": 2000, "raw-2": 2000}
    kills = 0
    try:
        running.start()
        clients = [
            start_client(name.split("-")[0], running.url, name, count, "--batch", "20")
            for name, count in sizes.items()
        ]
        while any(client.poll() is None for client in clients) and kills < 8:
            time.sleep(rng.uniform(0.1, 0.8))
            running.kill()
            kills += 1
            running.start()
        reports = dict(zip(sizes, finish(clients), strict=True))
        upstream.collector.clear_faults()
        running.wait_drained()
        assert running.stop() == 0, running.log
    finally:
        running.close()
    where = f"seed {SEED}, {kills} kills\n{running.log[-3000:]}"
    assert kills >= 3, where
    # Restarts found batches the killed daemons had not forwarded, and forwarded them.
    assert "an earlier run left in" in running.log, where
    rows = stored(upstream.db)
    # Acknowledged by the daemon (202), so owed to the collector: every one is there.
    acknowledged = {i for name in ("raw-1", "raw-2") for i in reports[name]["acknowledged"]}
    assert acknowledged <= stored_ids(upstream.db), where
    # The clients resend what was not acknowledged: in the end every event arrived once.
    expected = set().union(*(expected_licenses(name, count) for name, count in sizes.items()))
    assert set(rows) == expected, where
    assert max(rows.values()) == 1, where
    for name in ("ours-1", "ours-2"):
        assert reports[name]["delivered"] == sizes[name], (reports[name], where)

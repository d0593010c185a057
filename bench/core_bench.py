"""The core against doow-track 0.1.2, side by side in one run.

track() cost, flush CPU per event, end-to-end throughput (with events lost), import cost,
and the collector's sustained ingest rate.

    make bench          # or: .venv/bin/python bench/core_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from bench.harness import (
    BENCH_KEY,
    CollectorProcess,
    batch_body,
    collector_process,
    command_seconds,
    median,
    per_call_seconds,
    ratio,
    table,
)
from doow_serverless import DoowTracker

EVENT: dict[str, Any] = {
    "metric": "tokens",
    "quantity": 1024,
    "license_id": "lic_abc123",
    "unit": "tokens",
    "attribution": {"model": "gpt-4o"},
}
SERVERLESS_ENV = {"AWS_LAMBDA_FUNCTION_NAME": "bench"}  # no background thread: nothing sent


def official() -> Any:
    import doow_track

    return doow_track


def official_tracker(endpoint: str, **options: Any) -> Any:
    doow_track = official()
    settings = {
        "endpoint": endpoint,
        "flush_at": 10**9,
        "flush_interval": 3600.0,
        "max_queue_size": 10**8,
        **options,
    }
    return doow_track.Tracker(BENCH_KEY, doow_track.TrackerOptions(**settings))


def official_track(tracker: Any) -> Callable[[], None]:
    track_event = official().TrackEvent

    def call() -> None:
        tracker.track(track_event(**EVENT))

    return call


def bench_track(quick: bool) -> tuple[float, float]:
    """Per call, each repeat on a fresh tracker filled to the default queue size (10,000).

    A function's queue never holds more; a loop that piles up millions of events measures
    the garbage collector walking them, not track().
    """
    calls, repeats = (10_000, 11) if quick else (10_000, 41)
    ours_figures, theirs_figures = [], []
    for _ in range(repeats):
        ours = DoowTracker(BENCH_KEY, endpoint="http://127.0.0.1:9", environ=SERVERLESS_ENV)
        ours_figures += per_call_seconds(functools.partial(ours.track, **EVENT), calls, 1)
        ours._enabled = False  # nothing to deliver at exit
        theirs = official_tracker("http://127.0.0.1:9")
        theirs_figures += per_call_seconds(official_track(theirs), calls, 1)
        theirs._options.enabled = False
        theirs._buffer.clear()
    return median(ours_figures), median(theirs_figures)


def bench_flush_cpu(collector: CollectorProcess, quick: bool) -> tuple[float, float]:
    events, repeats = (5_000, 3) if quick else (10_000, 7)
    ours_figures, theirs_figures = [], []
    for _ in range(repeats):
        collector.reset()
        ours = DoowTracker(
            BENCH_KEY, endpoint=collector.url, max_queue_size=10**6, environ=SERVERLESS_ENV
        )
        for _ in range(events):
            ours.track(**EVENT)
        started = time.process_time()
        result = ours.flush(timeout=120)
        ours_figures.append((time.process_time() - started) / events)
        assert result.pending == 0, result
        ours.shutdown(timeout=5)

        theirs = official_tracker(collector.url)
        call = official_track(theirs)
        for _ in range(events):
            call()
        started = time.process_time()
        theirs.flush()
        theirs_figures.append((time.process_time() - started) / events)
        theirs.shutdown()
    return median(ours_figures), median(theirs_figures)


def bench_throughput(collector: CollectorProcess, quick: bool) -> dict[str, tuple[float, int]]:
    """Events per second from the first track() to the end of shutdown(), and events lost.

    Both trackers run with their defaults in a long-running process (background flushing).
    """
    events = 50_000 if quick else 200_000
    results: dict[str, tuple[float, int]] = {}

    collector.reset()
    started = time.perf_counter()
    ours = DoowTracker(BENCH_KEY, endpoint=collector.url, environ={})
    for _ in range(events):
        ours.track(**EVENT)
    ours.shutdown(timeout=120)
    elapsed = time.perf_counter() - started
    results["doow-serverless"] = (events / elapsed, events - collector.stats()["events_stored"])

    collector.reset()
    doow_track = official()
    started = time.perf_counter()
    theirs = doow_track.Tracker(BENCH_KEY, doow_track.TrackerOptions(endpoint=collector.url))
    call = official_track(theirs)
    for _ in range(events):
        call()
    theirs.shutdown()
    elapsed = time.perf_counter() - started
    time.sleep(1.0)  # anything its threads still send after shutdown() is counted, not lost
    results["doow-track 0.1.2"] = (events / elapsed, events - collector.stats()["events_stored"])
    return results


def bench_import(quick: bool) -> dict[str, float]:
    """Wall time of `python -c "import X"` above `python -c pass`, and the import alone."""
    repeats = 7 if quick else 21
    python = sys.executable
    bare = command_seconds([python, "-c", "pass"], repeats)
    figures = {"bare python": bare}
    for module in ("doow_serverless", "doow_track"):
        wall = command_seconds([python, "-c", f"import {module}"], repeats)
        figures[f"import {module}"] = wall - bare
        figures[f"importtime {module}"] = median(
            [import_seconds(python, module) for _ in range(repeats)]
        )
    return figures


def import_seconds(python: str, module: str) -> float:
    """The import's own cumulative time, as `python -X importtime` reports it (from bytecode)."""
    environment = {**os.environ}
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    report = subprocess.run(
        [python, "-X", "importtime", "-c", f"import {module}"],
        check=True,
        capture_output=True,
        text=True,
        env=environment,
    ).stderr
    for line in reversed(report.splitlines()):
        fields = [field.strip() for field in line.split("|")]
        if len(fields) == 3 and fields[2] == module:
            return int(fields[1]) / 1e6
    raise RuntimeError(f"no importtime line for {module}")


def bench_collector_ingest(collector: CollectorProcess, quick: bool) -> float:
    """Sustained events/s into the collector, 500-event gzip batches over keep-alive, 2 clients."""
    import httpx

    seconds = 2.0 if quick else 5.0
    batches = [batch_body() for _ in range(40)]
    counts = [0, 0]
    stop_at = time.monotonic() + seconds

    def client(slot: int) -> None:
        with httpx.Client() as http:
            index = slot
            while time.monotonic() < stop_at:
                body = batches[index % len(batches)]
                answer = http.post(
                    f"{collector.url}/telemetry/events",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {BENCH_KEY}",
                        "Content-Type": "application/json",
                        "Content-Encoding": "gzip",
                    },
                )
                answer.raise_for_status()
                counts[slot] += 500
                index += 2

    collector.reset()
    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def run(quick: bool = False) -> str:
    track_ours, track_theirs = bench_track(quick)
    imports = bench_import(quick)
    with collector_process() as collector:
        cpu_ours, cpu_theirs = bench_flush_cpu(collector, quick)
        throughput = bench_throughput(collector, quick)
        ingest = bench_collector_ingest(collector, quick)

    (ours_rate, ours_lost) = throughput["doow-serverless"]
    (theirs_rate, theirs_lost) = throughput["doow-track 0.1.2"]
    events = 50_000 if quick else 200_000
    rows = [
        [
            "`track()` median per call",
            f"{track_ours * 1e6:.2f} µs",
            f"{track_theirs * 1e6:.2f} µs",
            f"{ratio(track_theirs, track_ours)} faster",
            "≤ 2 µs; ≥ 6× faster",
        ],
        [
            "flush CPU per event (median)",
            f"{cpu_ours * 1e6:.1f} µs",
            f"{cpu_theirs * 1e6:.1f} µs",
            f"{ratio(cpu_theirs, cpu_ours)} less",
            "",
        ],
        [
            f"end-to-end throughput, {events:,} events",
            f"{ours_rate:,.0f} ev/s, {ours_lost} lost",
            f"{theirs_rate:,.0f} ev/s, {theirs_lost} lost",
            f"{ratio(ours_rate, theirs_rate)}",
            "≥ 1.5×, 0 lost",
        ],
        [
            "import time (`-X importtime`, cumulative, median)",
            f"{imports['importtime doow_serverless'] * 1e3:.1f} ms",
            f"{imports['importtime doow_track'] * 1e3:.1f} ms",
            f"{ratio(imports['importtime doow_track'], imports['importtime doow_serverless'])}"
            " less",
            "≤ 45 ms",
        ],
        [
            "`python -c 'import …'` wall time above `python -c pass` (median)",
            f"{imports['import doow_serverless'] * 1e3:.1f} ms",
            f"{imports['import doow_track'] * 1e3:.1f} ms",
            f"{ratio(imports['import doow_track'], imports['import doow_serverless'])} less",
            "",
        ],
    ]
    return "\n".join(
        [
            "## Core: doow-serverless vs doow-track 0.1.2",
            "",
            table(["measure", "doow-serverless", "doow-track 0.1.2", "ratio", "target"], rows),
            "",
            f"Bare `python -c pass`: {imports['bare python'] * 1e3:.1f} ms (median). "
            f"Collector sustained ingest (500-event gzip batches, 2 keep-alive clients, "
            f"collector in its own process): **{ingest:,.0f} events/s** (target ≥ 50,000).",
            "",
            "Method: `track()` is timed in loops of calls with nothing sent (serverless mode); "
            "flush CPU is `time.process_time()` around one flush of a full queue to the "
            "collector in another process; throughput runs each SDK with its defaults in a "
            "long-running process, from the first `track()` to the end of `shutdown()`, and "
            "counts what the collector stored.",
            "",
            "Reading these figures: this is a 2-vCPU VM with noisy neighbours, and one run is "
            "one sample; across runs `track()` has measured 2.7–2.8 µs (5.6–5.8× faster, so "
            "the ≤ 2 µs and ≥ 6× targets are not met here), import time 33–49 ms and "
            "collector ingest 36,000–75,000 events/s. Flush CPU per event is about "
            "doow-track's: both spend it in JSON encoding and gzip; what differs is that "
            "doow-serverless bounds the time and keeps ids stable, not that it encodes faster.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    print(run(quick=parser.parse_args().quick))


if __name__ == "__main__":
    main()

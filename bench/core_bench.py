"""The core against doow-track 0.1.2 and a minimal client (the floor), side by side.

track() cost, flush CPU per event (a warm client, and the first flush of a fresh process,
apart), end-to-end throughput (with events lost), gzip levels, import costs, and the
collector's sustained ingest rate. The floor is ``bench/floor.py``: the same events on the
wire with nothing else done, with the standard library's json and with orjson.

    make bench          # or: .venv/bin/python bench/core_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from bench.floor import FloorClient, json_encoder, orjson_encoder
from bench.harness import (
    BENCH_KEY,
    EVENT,
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
from doow_serverless._core.constants import GZIP_LEVEL

COMMAND = "make bench  # or: .venv/bin/python bench/core_bench.py [--quick]"

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


def bench_track(quick: bool) -> tuple[float, float, float]:
    """Per call, each repeat on a fresh tracker filled to the default queue size (10,000).

    A function's queue never holds more; a loop that piles up millions of events measures
    the garbage collector walking them, not track().
    """
    calls, repeats = (10_000, 11) if quick else (10_000, 41)
    ours_figures, theirs_figures, floor_figures = [], [], []
    for _ in range(repeats):
        ours = DoowTracker(BENCH_KEY, endpoint="http://127.0.0.1:9", environ=SERVERLESS_ENV)
        ours_figures += per_call_seconds(functools.partial(ours.track, **EVENT), calls, 1)
        ours._enabled = False  # nothing to deliver at exit
        theirs = official_tracker("http://127.0.0.1:9")
        theirs_figures += per_call_seconds(official_track(theirs), calls, 1)
        theirs._options.enabled = False
        theirs._buffer.clear()
        floor = FloorClient("http://127.0.0.1:9", BENCH_KEY, json_encoder())
        floor_figures += per_call_seconds(functools.partial(floor.track, **EVENT), calls, 1)
    return median(ours_figures), median(theirs_figures), median(floor_figures)


# -- flush CPU, each kind in a fresh interpreter --------------------------------------------

FLUSH_KINDS = {
    "ours": "doow-serverless, sending only (`log_ahead=False, spool=False`)",
    "ours-serverless": "doow-serverless as on Lambda: write-ahead log line, spool, send",
    "ours-stdlib": "doow-serverless, sending only, orjson not installed",
    "official": "doow-track 0.1.2",
    "floor-json": "floor: `json` + gzip",
    "floor-orjson": "floor: orjson + gzip",
}


def flush_worker(kind: str, url: str, events: int, warm: int) -> dict[str, Any]:
    """In a fresh interpreter: CPU per event of the first flush (the client is built in
    it: HTTP library, TLS context, connection) and of ``warm`` flushes after it."""
    if kind == "ours-stdlib":
        sys.modules["orjson"] = None  # type: ignore[assignment] # import orjson fails
    figures: list[float] = []
    with tempfile.TemporaryDirectory() as spool:
        track: Callable[[], object]
        flush: Callable[[], object]
        if kind.startswith("ours"):
            serverless = kind == "ours-serverless"
            tracker = DoowTracker(
                BENCH_KEY,
                endpoint=url,
                max_queue_size=10**6,
                log_ahead=serverless,
                spool=spool if serverless else False,
                environ=SERVERLESS_ENV,
            )
            track = functools.partial(tracker.track, **EVENT)
            flush = functools.partial(tracker.flush, timeout=120)
            close: Callable[[], object] = functools.partial(tracker.shutdown, timeout=5)
        elif kind == "official":
            theirs = official_tracker(url)
            track, flush, close = official_track(theirs), theirs.flush, theirs.shutdown
        else:
            encoder = json_encoder() if kind == "floor-json" else orjson_encoder()
            floor = FloorClient(url, BENCH_KEY, encoder)
            track = functools.partial(floor.track, **EVENT)
            flush, close = floor.flush, floor.close
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            for _ in range(1 + warm):
                for _ in range(events):
                    track()
                started = time.process_time()
                flush()
                figures.append((time.process_time() - started) / events)
            close()
    return {"first": figures[0], "warm": figures[1:]}


def bench_flush_cpu(collector: CollectorProcess, quick: bool) -> dict[str, tuple[float, float]]:
    """Each kind's (first flush, warm flush) CPU per event, medians over fresh processes."""
    events, processes, warm = (5_000, 3, 3) if quick else (5_000, 7, 5)
    firsts: dict[str, list[float]] = {kind: [] for kind in FLUSH_KINDS}
    warms: dict[str, list[float]] = {kind: [] for kind in FLUSH_KINDS}
    for _ in range(processes):
        for kind in FLUSH_KINDS:  # interleaved, so drift hits every kind alike
            collector.reset()
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--flush-worker",
                    kind,
                    "--url",
                    collector.url,
                    "--events",
                    str(events),
                    "--warm",
                    str(warm),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            result = json.loads(out.strip().splitlines()[-1])
            firsts[kind].append(result["first"])
            warms[kind] += result["warm"]
            stored = collector.stats()["events_stored"]
            assert stored == events * (1 + warm), (kind, stored)
    return {kind: (median(firsts[kind]), median(warms[kind])) for kind in FLUSH_KINDS}


def bench_throughput(collector: CollectorProcess, quick: bool) -> dict[str, tuple[float, int]]:
    """Events per second from the first track() to the end of shutdown(), and events lost.

    Both trackers run with their defaults in a long-running process (background flushing);
    the floor sends each 500 events as they are tracked, in the tracking thread.
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

    for name, encoder in (("floor-json", json_encoder()), ("floor-orjson", orjson_encoder())):
        collector.reset()
        started = time.perf_counter()
        floor = FloorClient(collector.url, BENCH_KEY, encoder)
        for _ in range(events):
            floor.track(**EVENT)
            if len(floor.events) >= 500:
                floor.flush()
        floor.flush()
        floor.close()
        elapsed = time.perf_counter() - started
        results[name] = (events / elapsed, events - collector.stats()["events_stored"])
    return results


def bench_gzip_levels(quick: bool) -> list[list[str]]:
    """CPU per event and bytes of one 500-event batch body, at each gzip level.

    The batch is varied as real usage is (four metrics, forty licenses, three attribution
    keys, a request id in metadata), built by the SDK's own encoder."""
    from doow_serverless._core.events import QueuedEvent
    from doow_serverless._core.wire import (
        encode_standard,
        event_document,
        join_batch,
        new_random_ids,
    )

    rng = random.Random(20)
    texts = [
        encode_standard(
            event_document(
                QueuedEvent(
                    rng.choice(["tokens.in", "tokens.out", "api_calls", "images"]),
                    rng.randint(1, 50_000),
                    f"lic_{rng.randint(1, 40):04d}",
                    "tokens",
                    "USAGE",
                    1.76e9 + index * 0.013,
                    {
                        "model": rng.choice(["gpt-4o", "claude-3", "llama-70b"]),
                        "team": rng.choice(["search", "platform", "ads"]),
                        "region": "eu-west-1",
                    },
                    {"request_id": f"req_{rng.getrandbits(64):016x}"},
                    None,
                    None,
                    None,
                ),
                event_id,
                None,
            )
        )
        for index, event_id in enumerate(new_random_ids(500))
    ]
    body = join_batch(str(uuid.uuid4()), texts)
    repeats = 11 if quick else 41
    rows = []
    for level in (1, 3, 6, 9):
        figures = []
        for _ in range(repeats):
            started = time.process_time()
            compressed = zlib.compress(body, level, wbits=31)
            figures.append((time.process_time() - started) / 500)
        rows.append(
            [
                f"{level}{' (the SDK)' if level == GZIP_LEVEL else ''}",
                f"{median(figures) * 1e6:.2f} µs",
                f"{len(compressed):,} bytes ({len(compressed) / len(body):.1%})",
            ]
        )
    return [*rows, ["none", "-", f"{len(body):,} bytes"]]


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
    # What the fast encoder costs to load: alone, and after the SDK and httpcore.
    figures["importtime orjson"] = median(
        [import_seconds(python, "orjson") for _ in range(repeats)]
    )
    figures["importtime orjson after"] = median(
        [
            import_seconds(python, "orjson", "import doow_serverless, httpcore; ")
            for _ in range(repeats)
        ]
    )
    return figures


def import_seconds(python: str, module: str, before: str = "") -> float:
    """The import's own cumulative time, as `python -X importtime` reports it (from
    bytecode), after the statements ``before``."""
    environment = {**os.environ}
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    report = subprocess.run(
        [python, "-X", "importtime", "-c", f"{before}import {module}"],
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
    track_ours, track_theirs, track_floor = bench_track(quick)
    imports = bench_import(quick)
    gzip_rows = bench_gzip_levels(quick)
    with collector_process() as collector:
        cpu = bench_flush_cpu(collector, quick)
        throughput = bench_throughput(collector, quick)
        ingest = bench_collector_ingest(collector, quick)

    events = 50_000 if quick else 200_000
    us = 1e6
    fast_floor = cpu["floor-orjson"][1]
    cpu_rows = [
        [
            label,
            f"{cpu[kind][1] * us:.2f} µs",
            f"{cpu[kind][1] / fast_floor:.2f}×",
            f"{cpu[kind][0] * us:.2f} µs",
        ]
        for kind, label in FLUSH_KINDS.items()
    ]
    floor_rate = throughput["floor-orjson"][0]
    throughput_rows = [
        [name, f"{rate:,.0f} ev/s", f"{rate / floor_rate:.2f}×", str(lost)]
        for name, (rate, lost) in throughput.items()
    ]
    track_rows = [
        ["doow-serverless", f"{track_ours * us:.2f} µs", f"{track_ours / track_floor:.1f}×"],
        ["doow-track 0.1.2", f"{track_theirs * us:.2f} µs", f"{track_theirs / track_floor:.1f}×"],
        ["floor (a tuple appended to a list)", f"{track_floor * us:.2f} µs", "1.0×"],
    ]
    ms = 1e3
    import_rows = [
        [
            "import time (`-X importtime`, cumulative, median)",
            f"{imports['importtime doow_serverless'] * ms:.1f} ms",
            f"{imports['importtime doow_track'] * ms:.1f} ms",
            f"{ratio(imports['importtime doow_track'], imports['importtime doow_serverless'])}"
            " less",
        ],
        [
            "`python -c 'import …'` wall time above `python -c pass` (median)",
            f"{imports['import doow_serverless'] * ms:.1f} ms",
            f"{imports['import doow_track'] * ms:.1f} ms",
            f"{ratio(imports['import doow_track'], imports['import doow_serverless'])} less",
        ],
    ]
    processes = 3 if quick else 7
    return "\n".join(
        [
            "## Core: doow-serverless, doow-track 0.1.2 and the floor",
            "",
            f"Reproduce: `{COMMAND}`. The floor is `bench/floor.py`: the same events on the "
            "wire and nothing else (no validation, queue bound, durability or deadline), "
            "encoded by the standard library's `json` or by orjson, gzipped at the SDK's "
            f"level ({GZIP_LEVEL}), POSTed over one kept-alive `http.client` connection. "
            "Every client talks to the collector in another process.",
            "",
            "### Flush CPU per event",
            "",
            f"5,000 events a flush, 500 a request; `time.process_time()` around `flush()`. "
            f"Each client in {processes} fresh interpreters, interleaved; in each, one first "
            "flush (the client is built in it: HTTP library, TLS context, connection, and "
            "for the SDK orjson, loaded by the first batch of 100 events or more) and then "
            f"{3 if quick else 5} warm flushes. Medians.",
            "",
            table(["client", "warm flush", "× fast floor", "first flush"], cpu_rows),
            "",
            "### `track()` per call",
            "",
            "Loops of 10,000 calls on a fresh client, nothing sent (serverless mode); median.",
            "",
            table(["client", "per call", "× floor"], track_rows),
            "",
            f"### Throughput, {events:,} events, one thread tracking",
            "",
            "From the first `track()` to the end of `shutdown()` (the SDKs, with their "
            "defaults: a background thread sends), or of the last request (the floor sends "
            "each 500 events from the tracking thread); lost = tracked − stored by the "
            "collector.",
            "",
            table(["client", "events/s", "× fast floor", "lost"], throughput_rows),
            "",
            "### gzip level",
            "",
            "One 500-event batch body as the SDK writes it, varied as real usage is (four "
            "metrics, forty licenses, three attribution keys, a request id in metadata); "
            "`zlib.compress(body, level, wbits=31)`, CPU per event, median.",
            "",
            table(["level", "CPU per event", "compressed"], gzip_rows),
            "",
            "### Import",
            "",
            table(["measure", "doow-serverless", "doow-track 0.1.2", "ratio"], import_rows),
            "",
            f"Bare `python -c pass`: {imports['bare python'] * ms:.1f} ms (median). "
            f"`import orjson` (the `fast` extra): {imports['importtime orjson'] * ms:.1f} ms "
            f"in a fresh interpreter, {imports['importtime orjson after'] * ms:.1f} ms after "
            "doow_serverless and httpcore (it imports uuid, dataclasses and datetime).",
            "",
            "Collector sustained ingest (500-event gzip batches, 2 keep-alive clients, "
            f"collector in its own process): **{ingest:,.0f} events/s**.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--flush-worker", choices=sorted(FLUSH_KINDS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=5_000, help=argparse.SUPPRESS)
    parser.add_argument("--warm", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flush_worker:
        result = flush_worker(args.flush_worker, args.url, args.events, args.warm)
        print(json.dumps(result))
        return
    print(run(quick=args.quick))


if __name__ == "__main__":
    main()

"""The daemon: throughput from 4 client processes through it to the collector, against the
same clients sending to the collector directly; and its memory under a dead upstream.

    make bench          # or: .venv/bin/python bench/daemon_bench.py [--quick]

Every part is its own process: the collector, the daemon, each client. A client process
(``python bench/daemon_bench.py client ENDPOINT COUNT``) builds a DoowTracker with its
defaults (a long-running process: background sending), waits for the word to start,
tracks COUNT events as fast as it can, and shuts down. Throughput is the events of all
clients over the time from that word until the collector has stored them all.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    BENCH_KEY,
    CollectorProcess,
    batch_body,
    collector_process,
    free_port,
    get_json,
    median,
    ratio,
    serving,
    table,
)

CLIENTS = 4
EVENT: dict[str, Any] = {
    "metric": "tokens",
    "quantity": 1024,
    "unit": "tokens",
    "attribution": {"model": "gpt-4o"},
}


# -- the client process ---------------------------------------------------------------------


def client_main(endpoint: str, count: int) -> None:
    from doow_serverless import DoowTracker

    tracker = DoowTracker(BENCH_KEY, endpoint=endpoint, environ={})
    print("ready", flush=True)
    sys.stdin.readline()  # the word to start
    started = time.perf_counter()
    for n in range(count):
        tracker.track(license_id=f"lic_{n % 100}", **EVENT)
    result = tracker.shutdown(timeout=120)
    stats = tracker.stats()
    report = {
        "seconds": time.perf_counter() - started,
        "delivered": stats.delivered,
        "dropped": stats.dropped,
        "pending": result.pending,
    }
    print(json.dumps(report), flush=True)


class IngestClient:
    """One keep-alive connection that posts gzip batches as an SDK does."""

    def __init__(self, url: str) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self._connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)

    def post(self, body: bytes) -> int:
        headers = {
            "Authorization": f"Bearer {BENCH_KEY}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        self._connection.request("POST", "/telemetry/events", body, headers)
        answer = self._connection.getresponse()
        answer.read()
        return answer.status


def batches_client_main(endpoint: str, count: int) -> None:
    """Posts ``count`` events in 500-event gzip batches built before the start, one request
    at a time over one keep-alive connection; a 429 or 503 is posted again."""
    bodies = [batch_body() for _ in range(count // 500)]
    client = IngestClient(endpoint)
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    for body in bodies:
        while client.post(body) != 202:
            time.sleep(0.01)
    print(json.dumps({"seconds": time.perf_counter() - started}), flush=True)


# -- the daemon process ---------------------------------------------------------------------


class DaemonProcess:
    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url

    def status(self) -> dict[str, Any]:
        return get_json(f"{self.url}/healthz")

    def rss_bytes(self) -> tuple[int, int]:
        """The resident set now, and its peak (``VmHWM``), from /proc."""
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            fields[name] = value.strip()
        return _kib(fields["VmRSS"]), _kib(fields["VmHWM"])


def _kib(text: str) -> int:
    return int(text.split(maxsplit=1)[0]) * 1024


@contextmanager
def daemon_process(endpoint: str, *extra: str) -> Iterator[DaemonProcess]:
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "doow_serverless",
                "daemon",
                "--api-key",
                BENCH_KEY,
                "--endpoint",
                endpoint,
                "--listen",
                f"127.0.0.1:{port}",
                "--spool-dir",
                str(Path(folder) / "spool"),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        running = DaemonProcess(process, f"http://127.0.0.1:{port}")
        with serving(process, running.status, "the daemon", stop_wait=30):
            yield running


# -- throughput -----------------------------------------------------------------------------


def drive_clients(kind: str, endpoint: str, per_client: int) -> float:
    """Start the client processes, give them all the word to start, wait for them to end;
    when the word was given (``time.perf_counter()``)."""
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, kind, endpoint, str(per_client)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(CLIENTS)
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    started = time.perf_counter()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in processes:
        process.wait(300)
    return started


def clients_run(
    collector: CollectorProcess, endpoint: str, per_client: int, kind: str = "client"
) -> tuple[float, int]:
    """Events per second from the word to start until the collector stored them all, and
    how many were lost."""
    collector.reset()
    started = drive_clients(kind, endpoint, per_client)
    total = CLIENTS * per_client
    deadline = time.monotonic() + 120
    while collector.stats()["events_stored"] < total and time.monotonic() < deadline:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    return total / elapsed, total - collector.stats()["events_stored"]


def bench_throughput(quick: bool) -> dict[str, list[tuple[float, int]]]:
    """Both kinds of clients, direct and through the daemon, runs interleaved."""
    per_client, repeats = (12_500, 3) if quick else (50_000, 5)
    figures: dict[str, list[tuple[float, int]]] = {}
    with collector_process() as collector, daemon_process(collector.url) as relay:
        for _ in range(repeats):  # interleaved, so both paths see the same machine
            for kind in ("client", "batches"):
                for path, endpoint in (("direct", collector.url), ("daemon", relay.url)):
                    run = clients_run(collector, endpoint, per_client, kind)
                    figures.setdefault(f"{kind} {path}", []).append(run)
    return figures


def bench_stages(quick: bool) -> tuple[float, float]:
    """The daemon's two halves apart: events/s acknowledged (fsync'ed) while the upstream
    refuses everything, then events/s forwarded from what it holds once the upstream is back."""
    per_client = 12_500 if quick else 50_000
    total = CLIENTS * per_client
    with (
        collector_process() as collector,
        daemon_process(collector.url, "--max-queue-size", str(total)) as relay,
    ):
        collector.set_faults({"then": {"status": 503}})
        started = drive_clients("batches", relay.url, per_client)
        ingest = total / (time.perf_counter() - started)
        assert relay.status()["accepted"] == total
        collector.reset()
        collector.set_faults({"then": None})
        started = time.perf_counter()
        while collector.stats()["events_stored"] < total:
            time.sleep(0.01)
        forward = total / (time.perf_counter() - started)
    return ingest, forward


# -- memory under a dead upstream -----------------------------------------------------------


def flood(url: str, stop: threading.Event, refused: list[int]) -> None:
    """Post 500-event gzip batches until ``stop``; counts the 429 answers."""
    client = IngestClient(url)
    while not stop.is_set():
        if client.post(batch_body()) == 429:
            refused[0] += 1
            time.sleep(0.05)


def bench_memory(quick: bool) -> list[dict[str, Any]]:
    """Fill the spool against a dead upstream (every request answered 503), with two
    memory bounds; the daemon's resident memory as the spool fills."""
    spool_max = (16 if quick else 64) * 1024 * 1024
    rows = []
    with collector_process() as collector:
        collector.set_faults({"then": {"status": 503}})
        for bound in (1_000, 10_000):
            with daemon_process(
                collector.url, "--spool-max-bytes", str(spool_max), "--max-queue-size", str(bound)
            ) as relay:
                time.sleep(0.5)
                start_rss, _ = relay.rss_bytes()
                stop = threading.Event()
                refused = [0]
                threads = [
                    threading.Thread(target=flood, args=(relay.url, stop, refused))
                    for _ in range(2)
                ]
                for thread in threads:
                    thread.start()
                samples = []
                deadline = time.monotonic() + 300
                while refused[0] < 20 and time.monotonic() < deadline:
                    time.sleep(0.5)
                    status = relay.status()
                    samples.append(
                        (status["spool_bytes"], relay.rss_bytes()[0], status["held_in_memory"])
                    )
                stop.set()
                for thread in threads:
                    thread.join()
                status = relay.status()
                peak = max(relay.rss_bytes()[1], *(rss for _, rss, _ in samples))
                rows.append(
                    {
                        "bound": bound,
                        "spool_max": spool_max,
                        "start_rss": start_rss,
                        "peak_rss": peak,
                        "half_rss": next(rss for size, rss, _ in samples if size >= spool_max / 2),
                        "held_max": max(held for _, _, held in samples),
                        "spool_bytes": status["spool_bytes"],
                        "accepted": status["accepted"],
                        "refused": status["refused_batches"],
                    }
                )
    return rows


# -- the section ----------------------------------------------------------------------------


def run(quick: bool = False) -> str:
    load = os.getloadavg()[1]  # other work on the machine shares the cores
    throughput = bench_throughput(quick)
    ingest, forward = bench_stages(quick)
    memory = bench_memory(quick)
    per_client = 12_500 if quick else 50_000
    mib = 1024 * 1024

    def rate(name: str) -> float:
        return median([value for value, _ in throughput[name]])

    def lost(name: str) -> str:
        return str(sum(value for _, value in throughput[name]))

    rows = []
    for kind, label in (
        ("client", "DoowTracker, defaults"),
        ("batches", "500-event gzip batches, built beforehand"),
    ):
        direct, relayed = rate(f"{kind} direct"), rate(f"{kind} daemon")
        rows.append(
            [
                label,
                f"{direct:,.0f} ev/s, {lost(f'{kind} direct')} lost",
                f"{relayed:,.0f} ev/s, {lost(f'{kind} daemon')} lost",
                ratio(relayed, direct),
            ]
        )
    memory_rows = [
        [
            f"{row['bound']:,} events",
            f"{row['start_rss'] / mib:.0f} MiB",
            f"{row['half_rss'] / mib:.0f} MiB",
            f"{row['peak_rss'] / mib:.0f} MiB",
            f"{row['held_max']:,}",
            f"{row['spool_bytes'] / mib:.1f} of {row['spool_max'] / mib:.0f} MiB",
            f"{row['accepted']:,}",
            f"{row['refused']:,}",
        ]
        for row in memory
    ]
    runs = len(throughput["client direct"])
    return "\n".join(
        [
            "## Daemon: local processes through `doow-serverless daemon`",
            "",
            "Reproduce: `.venv/bin/python bench/daemon_bench.py [--quick]` (also part of "
            f"`make bench`). {CLIENTS} client processes of {per_client:,} events each; the "
            "collector, the daemon and every client are processes of their own, all on this "
            f"machine's {os.cpu_count()} cores. Throughput runs from the word to start until the "
            f"collector has stored every event; medians of {runs} runs, direct and relayed "
            "interleaved.",
            "",
            table(["clients", "→ collector", "→ daemon → collector", "relayed / direct"], rows),
            "",
            f"The daemon's two halves apart (batch clients): **{ingest:,.0f} events/s "
            "acknowledged**, each batch fsync'ed to the spool before its 202, while the upstream "
            f"refuses everything; then **{forward:,.0f} events/s forwarded** from what it held, "
            "once the upstream is back (in requests of up to 500 events).",
            "",
            "Memory under a dead upstream (every request answered 503): two connections post "
            "500-event batches until the spool is full and answers 429. The daemon's resident "
            "memory at start, when the spool is half full, and at its peak:",
            "",
            table(
                [
                    "memory bound (max queue size)",
                    "RSS at start",
                    "RSS, spool half full",
                    "peak RSS",
                    "most events held in memory",
                    "spool at the end",
                    "events accepted",
                    "batches refused (429)",
                ],
                memory_rows,
            ),
            "",
            "Method: memory is `VmRSS`/`VmHWM` of the daemon's process from /proc; what is "
            "beyond the bound waits in the spool by file name only.",
            "",
            f"Reading these figures: the machine's load average was {load:.1f} when the run "
            "began (other work shares its cores), and one run is one sample. The relayed path "
            "does the collector's work and the daemon's (decode, check each event, encode, "
            "fsync; then encode, gzip, send) on the same cores as the clients, so it cannot "
            "exceed the direct path here; the daemon's own acknowledgement rate is the halves' "
            "first figure. Across runs on this machine: batch clients 23,000–50,000 ev/s "
            "direct and 15,000–31,000 ev/s relayed; the daemon acknowledged 53,000–75,000 "
            "ev/s and forwarded 18,000–37,000 ev/s. The target of ≥ 50,000 events/s end to "
            "end is not met here: the collector alone, direct, reaches it only in the best "
            "runs.",
        ]
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        client_main(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "batches":
        batches_client_main(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    print(run(quick=parser.parse_args().quick))


if __name__ == "__main__":
    main()

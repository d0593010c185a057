"""Shared pieces of the benchmarks: a collector in its own process, timing helpers, tables."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH_KEY = "dk_bench_0000000000000000"
# The event every core benchmark tracks: a metric, a quantity, a license, a unit, one
# attribution key.
EVENT: dict[str, Any] = {
    "metric": "tokens",
    "quantity": 1024,
    "license_id": "lic_abc123",
    "unit": "tokens",
    "attribution": {"model": "gpt-4o"},
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class CollectorProcess:
    """The project's collector, run as `doow-serverless collector` in a separate process.

    A separate process keeps the server's CPU out of the client's measurements.
    """

    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self._process = process

    def stats(self) -> dict[str, Any]:
        return get_json(f"{self.url}/stats")

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/_doow/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def set_faults(self, plan: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.url}/_doow/faults",
            method="POST",
            data=json.dumps(plan).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        document: dict[str, Any] = json.load(answer)
        return document


@contextlib.contextmanager
def collector_process() -> Iterator[CollectorProcess]:
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "doow_serverless",
                "collector",
                "--port",
                str(port),
                "--db",
                str(Path(folder) / "bench.sqlite3"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        running = CollectorProcess(f"http://127.0.0.1:{port}", process)
        with serving(process, running.stats, "the collector", stop_wait=10):
            yield running


@contextlib.contextmanager
def serving(
    process: subprocess.Popen[bytes], probe: Callable[[], object], name: str, stop_wait: float
) -> Iterator[None]:
    """Once ``probe`` answers (within 20 s), until the block ends; then the process is
    terminated (killed after ``stop_wait`` seconds)."""
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                probe()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.05)
        yield
    finally:
        process.terminate()
        try:
            process.wait(stop_wait)
        except subprocess.TimeoutExpired:
            process.kill()


def batch_body(size: int = 500) -> bytes:
    """A gzip request body of ``size`` events with new ids, as an SDK sends it."""
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "license_id": "lic_abc123",
            "occurred_at": "2026-11-22T10:15:30.123Z",
            "source_system": "sdk",
            "kind": "USAGE",
            "unit": "tokens",
            "attribution": {"model": "gpt-4o"},
            "measurements": [{"metric_name": "tokens", "quantity": 1024}],
        }
        for _ in range(size)
    ]
    document = {"batch_id": str(uuid.uuid4()), "sdk_version": "bench", "events": events}
    return gzip.compress(json.dumps(document).encode())


def per_call_seconds(call: Callable[[], object], calls: int, repeats: int) -> list[float]:
    """Seconds per call, one figure per repeat (each a loop of ``calls`` calls)."""
    figures = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        figures.append((time.perf_counter() - started) / calls)
    return figures


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def command_seconds(
    arguments: Sequence[str], repeats: int, env: dict[str, str] | None = None
) -> float:
    """Median wall time of running a command to completion."""
    figures = []
    environment = {**os.environ, **(env or {})}
    # Timed as installed packages run: from bytecode (pip writes it), not compiling each time.
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(arguments, check=True, env=environment, stdout=subprocess.DEVNULL)
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(arguments, check=True, env=environment, stdout=subprocess.DEVNULL)
        figures.append(time.perf_counter() - started)
    return median(figures)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.1f}×" if denominator else "n/a"

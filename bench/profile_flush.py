"""A short profile of one 500-event flush of a warm tracker (the pool already built).

    .venv/bin/python bench/profile_flush.py [--events 500] [--top 14] [--no-orjson]

``make bench`` puts it in docs/benchmarks.md beside the profile recorded before issue 20's
changes (``bench/profiles/flush-500-before.txt``: this script, run on commit 823d66f).

The collector runs in its own process; cProfile sees only this process's side, in CPU
time (waiting for the collector is not counted): forming the batch (ids, timestamps,
JSON), the write-ahead log line (to /dev/null here), gzip, and the request.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BENCH_KEY, EVENT, collector_process
from doow_serverless import DoowTracker

COMMAND = ".venv/bin/python bench/profile_flush.py [--no-orjson]"
BEFORE = Path(__file__).resolve().parent / "profiles" / "flush-500-before.txt"


def profile(events: int, top: int) -> str:
    with (
        collector_process() as collector,
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),
    ):
        tracker = DoowTracker(
            BENCH_KEY, endpoint=collector.url, environ={"AWS_LAMBDA_FUNCTION_NAME": "bench"}
        )
        for _ in range(events):  # a first flush of the same size: everything is loaded,
            tracker.track(**EVENT)  # the pool built and the connection open
        assert tracker.flush(timeout=30).pending == 0
        for _ in range(events):
            tracker.track(**EVENT)
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        result = tracker.flush(timeout=30)
        profiler.disable()
        assert result.delivered == events, result
        tracker.shutdown(timeout=5)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    # From the "ncalls" header on; paths shortened to the package.
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    total = next(line for line in lines if "function calls" in line).strip()
    body = [_short(line) for line in lines[start:]]
    return "\n".join([total, "", *body])


def _short(line: str) -> str:
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in line:
            index = line.rfind(marker)
            start = line.rfind(" ", 0, index) + 1
            line = line[:start] + line[index + len(marker) :]
    return line


def run(quick: bool = False) -> str:
    """The section of docs/benchmarks.md: before, and now with either encoder (each in a
    fresh interpreter, so the encoder chosen is the one a process would have)."""
    after = {}
    for label, flags in (("orjson installed", []), ("standard library only", ["--no-orjson"])):
        after[label] = subprocess.run(
            [sys.executable, __file__, *flags], check=True, capture_output=True, text=True
        ).stdout.rstrip()
    parts = [
        "## Profile of a 500-event flush",
        "",
        f"Reproduce: `{COMMAND}`. One flush of 500 events by a warm tracker (a first flush "
        "of the same size already built the pool and loaded everything), Lambda settings "
        "(write-ahead log line to /dev/null, spool), collector in another process. cProfile "
        "in CPU time (waiting for the collector is not counted), sorted by own time; its "
        "overhead inflates each Python call, so read the shares, not the totals.",
        "",
        "### Before (commit 823d66f, this script)",
        "",
        "```",
        BEFORE.read_text(encoding="utf-8").rstrip(),
        "```",
    ]
    for label, text in after.items():
        parts += ["", f"### Now, {label}", "", "```", text, "```"]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--top", type=int, default=14)
    parser.add_argument("--no-orjson", action="store_true", help="as if orjson were absent")
    args = parser.parse_args()
    if args.no_orjson:
        sys.modules["orjson"] = None  # type: ignore[assignment] # import orjson fails
    print(profile(args.events, args.top))


if __name__ == "__main__":
    main()

"""Vercel: what with_vercel costs, measured under Vercel's real Python runtime.

Every app runs in `vercel_runtime.vc_init` (Python 3.12, `.venv-vercel`) with vercel_local
playing the platform over the runtime's IPC socket; the collector runs in its own process.
Figures, for a Flask (WSGI) and a FastAPI (ASGI) app:
- warm request: what the client waits for (the response) and how long the invocation
  lasts (until the runtime reports its end), without an SDK and with one event flushed;
- the flush after the response: the same with a collector that takes 200 ms to answer;
- cold start: process start to first response, without and with the SDK, and the import
  and init steps on their own;
- deadline: when the endpoint hangs, how long before its deadline each invocation ends.

    .venv/bin/python bench/vercel_bench.py [--quick]      # needs make vercel-venv
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BENCH_KEY, CollectorProcess, collector_process, median, table
from doow_serverless_dev.vercel_local import VercelFunction, VercelResponse

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = Path(__file__).resolve().parent / "vercel_functions"
COMMAND = "make bench  # or: .venv/bin/python bench/vercel_bench.py [--quick]"
KINDS = {"wsgi": "Flask (WSGI)", "asgi": "FastAPI (ASGI)"}


def vercel_python() -> Path:
    return Path(os.environ.get("DOOW_VERCEL_PYTHON") or ROOT / ".venv-vercel" / "bin" / "python")


def function(collector: CollectorProcess, name: str) -> VercelFunction:
    return VercelFunction(
        f"api/{name}.py",
        project_dir=FUNCTIONS,
        python=vercel_python(),
        max_duration=10.0,
        environment={"DOOW_TRACK_API_KEY": BENCH_KEY, "DOOW_TRACK_ENDPOINT": collector.url},
    )


def checked(response: VercelResponse) -> VercelResponse:
    if not response.ok:
        raise RuntimeError(f"request failed: {response.status} {response.error}")
    return response


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def bench_warm(collector: CollectorProcess, kind: str, quick: bool) -> list[list[str]]:
    rounds = 40 if quick else 200
    names = (f"plain_{kind}", f"ours_{kind}")
    responses: dict[str, list[float]] = {name: [] for name in names}
    invocations: dict[str, list[float]] = {name: [] for name in names}
    running = [function(collector, name) for name in names]
    try:
        for fn in running:  # cold starts and first connections out of the way
            for _ in range(5):
                checked(fn.request())
        for _ in range(rounds):  # interleaved, so drift hits both alike
            for name, fn in zip(names, running, strict=True):
                response = checked(fn.request())
                assert response.duration is not None
                assert response.ended_at is not None
                responses[name].append(response.duration)
                invocations[name].append(response.ended_at - response.started_at)
    finally:
        for fn in running:
            fn.stop()
    plain, ours = names
    return [
        [
            KINDS[kind],
            f"{ms(median(responses[plain]))} → {ms(median(responses[ours]))}",
            f"{(median(responses[ours]) - median(responses[plain])) * 1000:+.2f} ms",
            f"{ms(median(invocations[plain]))} → {ms(median(invocations[ours]))}",
        ]
    ]


def bench_slow_collector(collector: CollectorProcess, kind: str, quick: bool) -> list[str]:
    rounds = 3 if quick else 8
    fn = function(collector, f"ours_{kind}")
    try:
        checked(fn.request())
        collector.set_faults({"latency_ms": 200})
        results = [checked(fn.request()) for _ in range(rounds)]
    finally:
        collector.set_faults({})
        fn.stop()
    durations = [r.duration for r in results if r.duration is not None]
    after = [r.after_response for r in results if r.after_response is not None]
    return [KINDS[kind], ms(median(durations)), ms(median(after))]


def bench_cold(collector: CollectorProcess, kind: str, quick: bool) -> list[list[str]]:
    repeats = 3 if quick else 9
    rows = []
    base: tuple[float, float] | None = None
    for name in (f"plain_{kind}", f"ours_{kind}"):
        firsts, ends = [], []
        for _ in range(repeats):
            fn = function(collector, name)
            try:
                started = time.monotonic()
                response = checked(fn.request())
                assert response.responded_at is not None
                assert response.ended_at is not None
                firsts.append(response.responded_at - started)
                ends.append(response.ended_at - started)
            finally:
                fn.stop()
        first, end = median(firsts), median(ends)
        if base is None:
            base = (first, end)
            rows.append(
                [f"{KINDS[kind]}, no SDK", f"{first * 1000:.0f} ms", f"{end * 1000:.0f} ms"]
            )
        else:
            rows.append(
                [
                    f"{KINDS[kind]}, with_vercel",
                    f"{first * 1000:.0f} ms ({(first - base[0]) * 1000:+.0f} ms)",
                    f"{end * 1000:.0f} ms ({(end - base[1]) * 1000:+.0f} ms)",
                ]
            )
    return rows


# Timed inside a fresh interpreter, step by step, so each figure is that step's own cost.
_IMPORT_STEPS = """
import time
t0 = time.perf_counter()
import doow_serverless
t1 = time.perf_counter()
import doow_serverless.vercel
t2 = time.perf_counter()
doow_serverless.DoowTracker("dk_x", environ={"VERCEL": "1"}).prepare()  # the first flush
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def bench_imports(quick: bool) -> str:
    repeats = 7 if quick else 21
    figures: list[list[float]] = [[], [], []]
    for _ in range(repeats):
        out = subprocess.run(
            [str(vercel_python()), "-c", _IMPORT_STEPS], capture_output=True, text=True, check=True
        ).stdout
        for column, value in zip(figures, out.split(), strict=True):
            column.append(float(value))
    labels = [
        "import doow_serverless",
        "then import doow_serverless.vercel",
        "then build the HTTP client (import httpcore, TLS context, pool): in the first flush",
    ]
    rows = [
        [label, f"{median(column) * 1000:.2f} ms"]
        for label, column in zip(labels, figures, strict=True)
    ]
    return "\n".join(
        [
            f"Init-phase costs in the runtime's Python {_python_version()}, each step timed "
            f"inside a fresh interpreter, median of {repeats}.",
            "",
            table(["step", "time"], rows),
        ]
    )


def _python_version() -> str:
    return subprocess.run(
        [str(vercel_python()), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def bench_deadline(collector: CollectorProcess, quick: bool) -> str:
    requests = 3 if quick else 8
    rows = []
    for kind, label in KINDS.items():
        for deadline in (1.0, 3.0):
            fn = function(collector, f"ours_{kind}")
            try:
                checked(fn.request())
                collector.set_faults({"then": {"action": "hang"}})
                results = [fn.request(deadline=deadline) for _ in range(requests)]
                kills = fn.kills
            finally:
                collector.set_faults({})
                fn.stop()
            margins = [r.margin for r in results if r.ok and r.margin is not None]
            in_time = sum(1 for margin in margins if margin > 0)
            rows.append(
                [
                    label,
                    f"{deadline:.0f} s",
                    f"{in_time}/{len(results)}",
                    f"{median(margins) * 1000:.0f} ms" if margins else "-",
                    str(kills),
                ]
            )
    return "\n".join(
        [
            "The endpoint hangs every request; the harness kills an instance at its deadline "
            "(the `x-vercel-internal-deadline` it sent).",
            "",
            table(
                ["app", "deadline", "ended before the deadline", "median margin", "killed"],
                rows,
            ),
        ]
    )


def run(quick: bool = False) -> str:
    if not vercel_python().exists():
        return (
            "## Vercel (real Python runtime)\n\nSkipped: no Vercel virtualenv "
            f"({vercel_python()}); build it with `make vercel-venv`."
        )
    with collector_process() as collector:
        warm = [row for kind in KINDS for row in bench_warm(collector, kind, quick)]
        slow = [bench_slow_collector(collector, kind, quick) for kind in KINDS]
        cold = [row for kind in KINDS for row in bench_cold(collector, kind, quick)]
        imports = bench_imports(quick)
        deadline = bench_deadline(collector, quick)
    rounds = 40 if quick else 200
    return "\n".join(
        [
            "## Vercel (real Python runtime)",
            "",
            f"Reproduce: `{COMMAND}`. Apps: `bench/vercel_functions/api/`.",
            "",
            "### Warm request",
            "",
            f"{rounds} requests each, interleaved, no SDK → with_vercel and one event. The "
            "response is what the client waits for; the invocation lasts until the runtime "
            "reports its end (after the flush handed to `wait_until`).",
            "",
            table(["app", "response", "added to the response", "invocation"], warm),
            "",
            "### The flush runs after the response",
            "",
            "The collector takes 200 ms to answer; the client does not wait for it.",
            "",
            table(["app", "response", "invocation went on after it for"], slow),
            "",
            "### Cold start",
            "",
            "A new runtime process per start, median of "
            f"{3 if quick else 9}. In the runtime's IPC mode with_vercel builds its HTTP "
            "client in the first flush, after the first response, not while the module "
            "loads (which the first response waits for).",
            "",
            table(["app", "start → first response", "start → invocation end"], cold),
            "",
            imports,
            "",
            "### Under a hanging endpoint",
            "",
            deadline,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    print(run(quick=parser.parse_args().quick))


if __name__ == "__main__":
    main()

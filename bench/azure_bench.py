"""Azure Functions: what with_azure_function costs, measured under the real library worker.

Every app runs in ``azure-functions-runtime`` (Python 3.13, ``.venv-azure``) with
``_azure_local`` playing the Functions host; the collector runs in its own process. Figures:
- import: what importing the integration adds to a worker that has the library loaded;
- warm invocation: latency added by with_azure_function with one event over the bare
  function, as a ratio to one raw keep-alive POST of the same batch (httpcore, the SDK's own
  HTTP library: the worker's environment has no other);
- cold start: worker start to first response, with and without the SDK;
- timeout: when the endpoint hangs, how long before the function timeout each invocation
  answers.

    .venv/bin/python bench/azure_bench.py [--quick]      # needs `make azure-venv`
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
from doow_serverless_dev.azure_local import (
    InvocationResult,
    LocalFunctionApp,
    TriggerInput,
    http_request,
)

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "azure_functions"
COMMAND = "make bench  # or: .venv/bin/python bench/azure_bench.py [--quick]"


def azure_python() -> str | None:
    python = os.environ.get("DOOW_AZURE_PYTHON") or str(ROOT / ".venv-azure" / "bin" / "python")
    return python if Path(python).exists() else None


def start(
    python: str, collector: CollectorProcess, name: str, **environment: str
) -> LocalFunctionApp:
    return LocalFunctionApp(
        APPS / name,
        python=python,
        environment={
            "DOOW_TRACK_API_KEY": BENCH_KEY,
            "DOOW_TRACK_ENDPOINT": collector.url,
            **environment,
        },
    ).start()


def get(route: str) -> TriggerInput:
    return http_request("GET", f"http://localhost/api/{route}")


def checked(result: InvocationResult) -> InvocationResult:
    if not result.ok:
        raise RuntimeError(f"invocation failed: {result.status} {result.error}")
    return result


# Timed inside a fresh worker interpreter that has the library worker loaded already.
_IMPORT_STEPS = """
import time
import azure_functions_runtime, azure_functions_runtime_v1
t0 = time.perf_counter()
import doow_serverless
t1 = time.perf_counter()
import doow_serverless.azure_functions
t2 = time.perf_counter()
doow_serverless.DoowTracker("dk_x", environ={"FUNCTIONS_WORKER_RUNTIME": "python"}).prepare()
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""
_AZURE_FUNCTIONS_IMPORT = """
import time
t0 = time.perf_counter()
import azure.functions
print(time.perf_counter() - t0)
"""


def bench_imports(python: str, quick: bool) -> str:
    repeats = 7 if quick else 21
    figures: list[list[float]] = [[], [], [], []]
    # As deployed: from bytecode (pip compiles on install; the first run here writes it).
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for run in range(repeats + 1):
        out = subprocess.run(
            [python, "-c", _IMPORT_STEPS],
            capture_output=True,
            text=True,
            check=True,
            env=environment,
        ).stdout
        if run == 0:
            continue
        for column, value in zip(figures[:3], out.split(), strict=True):
            column.append(float(value))
        out = subprocess.run(
            [python, "-c", _AZURE_FUNCTIONS_IMPORT],
            capture_output=True,
            text=True,
            check=True,
            env=environment,
        ).stdout
        figures[3].append(float(out))
    labels = [
        "import doow_serverless",
        "then import doow_serverless.azure_functions",
        "then prepare(): import httpcore, TLS context, pool (done at indexing)",
        "for scale: import azure.functions in a fresh interpreter (not imported by us)",
    ]
    rows = [
        [label, f"{median(column) * 1000:.2f} ms"]
        for label, column in zip(labels, figures, strict=True)
    ]
    return "\n".join(
        [
            f"Import costs in the worker's interpreter (Python 3.13, azure_functions_runtime "
            f"already loaded, from bytecode), each step timed inside a fresh interpreter, "
            f"median of {repeats}.",
            "",
            table(["step", "time"], rows),
        ]
    )


def bench_warm(python: str, collector: CollectorProcess, quick: bool) -> tuple[str, float]:
    rounds = 60 if quick else 300
    names = ("plain", "ours", "ours_async", "raw_post")
    durations: dict[str, list[float]] = {name: [] for name in names}
    app = start(python, collector, "warm")
    try:
        for name in names:  # first calls and connections out of the way
            for _ in range(5):
                checked(app.invoke(name, get(name)))
        for _ in range(rounds):  # interleaved, so drift hits all alike
            for name in names:
                duration = checked(app.invoke(name, get(name))).duration
                assert duration is not None
                durations[name].append(duration)
    finally:
        app.stop()
    plain, ours, ours_async, raw = (median(durations[name]) for name in names)
    post = raw - plain
    rows = [
        ["bare function (no SDK)", f"{plain * 1000:.2f} ms", "-"],
        [
            "with_azure_function, def, one event",
            f"{ours * 1000:.2f} ms",
            f"+{(ours - plain) * 1000:.2f} ms",
        ],
        [
            "with_azure_function, async def, one event",
            f"{ours_async * 1000:.2f} ms",
            f"+{(ours_async - plain) * 1000:.2f} ms",
        ],
        ["bare function + one raw httpcore POST", f"{raw * 1000:.2f} ms", f"+{post * 1000:.2f} ms"],
    ]
    ratio = (ours - plain) / post if post > 0 else float("nan")
    section = "\n".join(
        [
            f"Warm invocations, {rounds} each, interleaved in one worker; from the host's "
            "invocation request to the worker's response.",
            "",
            table(["function", "median invocation", "added"], rows),
            "",
            f"**Added by with_azure_function (def): {ratio:.2f}× one raw keep-alive POST.**",
        ]
    )
    return section, ratio


def bench_cold(python: str, collector: CollectorProcess, quick: bool) -> str:
    repeats = 5 if quick else 15
    names = ("cold_plain", "cold_ours")
    labels = {"cold_plain": "no SDK", "cold_ours": "doow-serverless (client prepared at indexing)"}
    totals: dict[str, list[float]] = {name: [] for name in names}
    firsts: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            started = time.perf_counter()
            app = start(python, collector, name)
            try:
                result = checked(app.invoke("hello", get("hello")))
                totals[name].append(time.perf_counter() - started)
                assert result.duration is not None
                firsts[name].append(result.duration)
            finally:
                app.stop()
    base = median(totals["cold_plain"])
    rows = [
        [
            labels[name],
            f"{median(totals[name]) * 1000:.0f} ms",
            f"+{(median(totals[name]) - base) * 1000:.0f} ms" if name != "cold_plain" else "-",
            f"{median(firsts[name]) * 1000:.1f} ms",
        ]
        for name in names
    ]
    return "\n".join(
        [
            f"Cold starts, {repeats} each: a new worker process, init, indexing, load, then "
            "the first invocation.",
            "",
            table(
                ["app", "worker start → first response", "over no SDK", "first invocation"],
                rows,
            ),
        ]
    )


def bench_timeout(python: str, collector: CollectorProcess, quick: bool) -> str:
    invocations = 3 if quick else 8
    rows = []
    for timeout in ("00:00:02", "00:00:05"):
        app = start(
            python,
            collector,
            "warm",
            AzureFunctionsJobHost__functionTimeout=timeout,
            DOOW_TRACK_FLUSH_TIMEOUT="60000",
        )
        try:
            for name in ("ours", "ours_async"):
                checked(app.invoke(name, get(name)))
                collector.set_faults({"then": {"action": "hang"}})
                try:
                    results = [app.invoke(name, get(name)) for _ in range(invocations)]
                finally:
                    collector.set_faults({})
                margins = [r.margin for r in results if r.margin is not None]
                ok = sum(r.ok for r in results)
                rows.append(
                    [
                        f"{name} ({'async def' if name.endswith('async') else 'def'})",
                        f"{app.timeout:.0f} s",
                        f"{ok}/{len(results)}",
                        f"{min(margins) * 1000:.0f} ms" if margins else "-",
                        str(app.timeouts),
                    ]
                )
        finally:
            app.stop()
    return "\n".join(
        [
            f"The collector hangs every request; {invocations} invocations per row, flush "
            "timeout raised to 60 s so that the function timeout is what bounds the flush "
            "(reserve 0.25 s).",
            "",
            table(
                ["function", "timeout", "answered", "least time left", "past the timeout"],
                rows,
            ),
        ]
    )


def run(quick: bool = False) -> str:
    python = azure_python()
    header = f"## Azure Functions\n\n`{COMMAND}`. "
    if python is None:
        return header + "Skipped: no `.venv-azure` (`make azure-venv`, needs Python 3.13)."
    with collector_process() as collector:
        warm, _ = bench_warm(python, collector, quick)
        parts = [
            header + "Apps run by azure-functions-runtime (Python 3.13), this package "
            "playing the Functions host; the collector in its own process.",
            bench_imports(python, quick),
            warm,
            bench_cold(python, collector, quick),
            bench_timeout(python, collector, quick),
        ]
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(run(quick=args.quick))


if __name__ == "__main__":
    main()

"""AWS Lambda: what with_lambda costs, measured under the real runtime client.

Every handler runs in `python -m awslambdaric` with lambda_local playing the Runtime API;
the collector runs in its own process. Figures:
- warm invocation: latency added by with_lambda with one event over the bare handler, as a
  ratio to one raw httpx keep-alive POST of the same batch (target <= 1.5x);
- cold start: process start to first response and to the invocation's end, without an
  SDK, with doow-serverless in each delivery mode (and in sync mode with the client built
  in the first flush rather than at init), and with doow-track 0.1.2 doing the same job;
- deadline: when the endpoint hangs, how long before its deadline each invocation answers.

    .venv/bin/python bench/lambda_bench.py [--quick]      # needs the bench extra
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    BENCH_KEY,
    CollectorProcess,
    collector_process,
    median,
    table,
)
from doow_serverless_dev.lambda_local import InvocationResult, LocalFunction

FUNCTIONS = Path(__file__).resolve().parent / "lambda_functions"
COMMAND = "make bench  # or: .venv/bin/python bench/lambda_bench.py [--quick]"


@contextmanager
def functions(
    collector: CollectorProcess,
    *names: str,
    timeout: float = 10.0,
    environment: dict[str, str] | None = None,
    concurrency: int | None = None,
) -> Iterator[list[LocalFunction]]:
    """Each handler of ``lambda_functions/`` by module name; ``name:MODE`` runs it with
    ``DOOW_TRACK_DELIVERY=MODE``."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                LocalFunction(
                    f"{name.partition(':')[0]}.handler",
                    code_dir=FUNCTIONS,
                    timeout=timeout,
                    function_name=f"bench-{name.replace('_', '-').replace(':', '-')}",
                    environment={
                        "DOOW_TRACK_API_KEY": BENCH_KEY,
                        "DOOW_TRACK_ENDPOINT": collector.url,
                        **({"DOOW_TRACK_DELIVERY": name.partition(":")[2]} if ":" in name else {}),
                        **(environment or {}),
                    },
                    concurrency=concurrency,
                )
            )
            for name in names
        ]


def checked(result: InvocationResult) -> InvocationResult:
    if not result.ok:
        raise RuntimeError(f"invocation failed: {result.status} {result.body[:300]!r}")
    return result


def bench_warm(collector: CollectorProcess, quick: bool) -> tuple[str, float]:
    rounds = 60 if quick else 300
    names = ("plain", "ours", "ours_no_spool", "raw_post")
    durations: dict[str, list[float]] = {name: [] for name in names}
    with functions(collector, *names) as running:
        for function in running:  # cold starts and first connections out of the way
            for _ in range(5):
                checked(function.invoke({}))
        for _ in range(rounds):  # interleaved, so drift hits all three alike
            for name, function in zip(names, running, strict=True):
                duration = checked(function.invoke({})).duration
                assert duration is not None
                durations[name].append(duration)
    plain, ours, no_spool, raw = (median(durations[name]) for name in names)
    added, post = ours - plain, raw - plain
    rows = [
        ["bare handler (no SDK)", f"{plain * 1000:.2f} ms", "-"],
        ["with_lambda, one event, flushed", f"{ours * 1000:.2f} ms", f"+{added * 1000:.2f} ms"],
        [
            "the same, spool off",
            f"{no_spool * 1000:.2f} ms",
            f"+{(no_spool - plain) * 1000:.2f} ms",
        ],
        ["bare handler + one raw httpx POST", f"{raw * 1000:.2f} ms", f"+{post * 1000:.2f} ms"],
    ]
    section = "\n".join(
        [
            f"Warm invocations, {rounds} each, interleaved; hand-out of the event to the "
            "runtime's answer, as the Runtime API sees it.",
            "",
            table(["handler", "median invocation", "added"], rows),
            "",
            f"**Added by with_lambda: {added / post:.2f}× one raw keep-alive POST** "
            f"(target ≤ 1.5×); {(no_spool - plain) / post:.2f}× with the spool off.",
        ]
    )
    return section, added / post


COLD_LABELS = {
    "plain": "no SDK",
    "ours:sync": "sync (the default): client built at init",
    "ours_unprepared": "sync, client built in the first flush instead",
    "ours:after-response": "after-response: client built by the first flush, after the response",
    "ours:logs": "logs-only: no client at all",
    "official": "doow-track 0.1.2, flush() in the handler",
}


def bench_cold(collector: CollectorProcess, quick: bool) -> str:
    repeats = 5 if quick else 15
    names = tuple(COLD_LABELS)
    responses: dict[str, list[float]] = {name: [] for name in names}
    completes: dict[str, list[float]] = {name: [] for name in names}
    firsts: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:  # interleaved, so drift hits every handler alike
            with functions(collector, name) as (function,):
                started = time.perf_counter()
                result = checked(function.invoke({}))
                # invoke() returns once the invocation is complete (every extension
                # released it); the response came `completed - duration` before that.
                complete = time.perf_counter() - started
                assert result.duration is not None
                assert result.completed is not None
                completes[name].append(complete)
                responses[name].append(complete - result.completed + result.duration)
                firsts[name].append(result.duration)
    base = median(responses["plain"])
    rows = [
        [
            COLD_LABELS[name],
            f"{median(responses[name]) * 1000:.0f} ms",
            f"+{(median(responses[name]) - base) * 1000:.0f} ms" if name != "plain" else "-",
            f"{median(completes[name]) * 1000:.0f} ms",
            f"{median(firsts[name]) * 1000:.1f} ms",
        ]
        for name in names
    ]
    return "\n".join(
        [
            f"Cold starts, {repeats} each, interleaved: a new runtime process per start, one "
            "event. *First response*: process start to the runtime's answer; *complete*: "
            "until the runtime and every extension called `next` (after-response flushes in "
            "between); *first invocation*: hand-out to answer.",
            "",
            table(
                [
                    "handler",
                    "start → first response",
                    "over no SDK",
                    "start → complete",
                    "first invocation",
                ],
                rows,
            ),
        ]
    )


# Timed inside a fresh interpreter that has loaded what the runtime client loads before
# the handler module, step by step, so each figure is that step's own cost.
_IMPORT_STEPS = """
import tempfile, time
import awslambdaric.bootstrap
spool = tempfile.mkdtemp()
t0 = time.perf_counter()
import doow_serverless
t1 = time.perf_counter()
import doow_serverless.aws_lambda
t2 = time.perf_counter()
tracker = doow_serverless.DoowTracker(
    "dk_x", endpoint="https://api.doow.co", spool=spool,
    environ={"AWS_LAMBDA_FUNCTION_NAME": "b"},
)
tracker.prepare(connect=False)
t3 = time.perf_counter()
import httpcore
t4 = time.perf_counter()
from doow_serverless._delivery.transport import ssl_context
ssl_context({})
t5 = time.perf_counter()
tracker.prepare()
t6 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)
"""


def bench_imports(quick: bool) -> str:
    repeats = 7 if quick else 21
    labels = [
        "import doow_serverless",
        "then import doow_serverless.aws_lambda",
        "then DoowTracker() and prepare(connect=False): the spool adopted (every mode)",
        "then import httpcore (sync: at init; after-response, background: first flush)",
        "then the TLS context: certifi's CA bundle, once per process",
        "then the connection pool",
    ]
    figures: list[list[float]] = [[] for _ in labels]
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_STEPS], capture_output=True, text=True, check=True
        ).stdout
        for column, value in zip(figures, out.split(), strict=True):
            column.append(float(value))
    rows = [
        [label, f"{median(column) * 1000:.1f} ms"]
        for label, column in zip(labels, figures, strict=True)
    ]
    return "\n".join(
        [
            f"Init-phase costs, each step timed inside a fresh interpreter that has loaded "
            f"what the runtime client loads first (`awslambdaric.bootstrap`), median of "
            f"{repeats}.",
            "",
            table(["step", "time"], rows),
        ]
    )


def bench_deadline(collector: CollectorProcess, quick: bool) -> str:
    invocations = 4 if quick else 10
    official_invocations = 2 if quick else 3
    rows = []
    collector.set_faults({"then": {"action": "hang"}})
    try:
        for timeout in (1.0, 3.0):
            with functions(collector, "ours", timeout=timeout) as (function,):
                results = [function.invoke({}) for _ in range(invocations)]
                rows.append(deadline_row("doow-serverless", timeout, results, function.kills))
        with functions(collector, "official", timeout=3.0) as (function,):
            results = [function.invoke({}) for _ in range(official_invocations)]
            rows.append(deadline_row("doow-track 0.1.2", 3.0, results, function.kills))
    finally:
        collector.set_faults({})
    return "\n".join(
        [
            "The endpoint hangs every request; the harness kills a process at its deadline, "
            "as Lambda does.",
            "",
            table(
                ["SDK", "timeout", "answered before the deadline", "median margin", "killed"],
                rows,
            ),
        ]
    )


def deadline_row(
    label: str, timeout: float, results: list[InvocationResult], kills: int
) -> list[str]:
    margins = [result.margin for result in results if result.ok and result.margin is not None]
    in_time = sum(1 for margin in margins if margin > 0)
    return [
        label,
        f"{timeout:.0f} s",
        f"{in_time}/{len(results)} ({100 * in_time / len(results):.0f}%)",
        f"{median(margins) * 1000:.0f} ms" if margins else "-",
        str(kills),
    ]


DELIVERY_LABELS = {
    "plain": "no SDK",
    "ours:sync": "with_lambda, sync (the default)",
    "ours:after-response": "with_lambda, after-response",
    "ours:logs": "with_lambda, logs-only",
    "official": "doow-track 0.1.2, flush() in the handler",
}


def warm_runs(
    running: list[LocalFunction], names: tuple[str, ...], rounds: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Interleaved warm invocations: each name's response times and completion times."""
    figures: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in names}
    for function in running:  # cold starts and first connections out of the way
        for _ in range(3):
            checked(function.invoke({}))
    for _ in range(rounds):
        for name, function in zip(names, running, strict=True):
            result = checked(function.invoke({}))
            assert result.duration is not None
            figures[name][0].append(result.duration)
            # The harness kills a sandbox whose extension never released it: none here.
            figures[name][1].append(result.completed or result.duration)
    return figures


def bench_delivery(collector: CollectorProcess, quick: bool) -> str:
    """Each delivery mode against an endpoint answering after 0, 50 and 200 ms."""
    rounds = 20 if quick else 100
    names = tuple(DELIVERY_LABELS)
    rows = []
    try:
        for latency in (0, 50, 200):
            collector.set_faults({"latency_ms": latency} if latency else {})
            with functions(collector, *names) as running:
                figures = warm_runs(running, names, rounds)
            base_response = median(figures["plain"][0])
            base_billed = median(figures["plain"][1])
            for name in names:
                response, billed = median(figures[name][0]), median(figures[name][1])
                rows.append(
                    [
                        f"{latency} ms",
                        DELIVERY_LABELS[name],
                        f"{response * 1000:.2f} ms",
                        "-" if name == "plain" else f"+{(response - base_response) * 1000:.2f} ms",
                        f"{billed * 1000:.2f} ms",
                        "-" if name == "plain" else f"+{(billed - base_billed) * 1000:.2f} ms",
                    ]
                )
    finally:
        collector.set_faults({})
    return "\n".join(
        [
            f"Warm invocations with one event, {rounds} per handler and latency, interleaved. "
            "*Response*: from the hand-out of the event to the runtime's answer (what the "
            "caller waits for). *Complete*: until the runtime and every extension called "
            "`next` (what Lambda bills). The endpoint is the collector with its `latency_ms` "
            "fault.",
            "",
            table(
                ["endpoint latency", "handler", "response", "added", "complete", "added"],
                rows,
            ),
        ]
    )


def bench_managed(collector: CollectorProcess, quick: bool) -> str:
    """Managed Instances (4 workers): background delivery against the synchronous flush."""
    rounds = 20 if quick else 100
    names = ("plain", "ours:auto", "ours:sync")
    labels = {
        "plain": "no SDK",
        "ours:auto": "with_lambda, background (auto there)",
        "ours:sync": "with_lambda, sync (DOOW_TRACK_DELIVERY=sync)",
    }
    rows = []
    try:
        for latency in (0, 50):
            collector.set_faults({"latency_ms": latency} if latency else {})
            with functions(collector, *names, concurrency=4) as running:
                figures = warm_runs(running, names, rounds)
            base = median(figures["plain"][0])
            for name in names:
                response = median(figures[name][0])
                added = "-" if name == "plain" else f"+{(response - base) * 1000:.2f} ms"
                rows.append([f"{latency} ms", labels[name], f"{response * 1000:.2f} ms", added])
    finally:
        collector.set_faults({})
    return "\n".join(
        [
            f"Lambda Managed Instances played locally (`concurrency=4`: the real runtime "
            f"client's four workers), {rounds} invocations per handler and latency, one at a "
            "time, interleaved; response as above.",
            "",
            table(["endpoint latency", "handler", "response", "added"], rows),
        ]
    )


def run(quick: bool = False) -> str:
    with collector_process() as collector:
        delivery = bench_delivery(collector, quick)
        managed = bench_managed(collector, quick)
        warm, _ = bench_warm(collector, quick)
        cold = bench_cold(collector, quick)
        imports = bench_imports(quick)
        deadline = bench_deadline(collector, quick)
    return "\n".join(
        [
            "## AWS Lambda (real runtime client)",
            "",
            f"Reproduce: `{COMMAND}`. Handlers: `bench/lambda_functions/`.",
            "",
            "### Delivery modes, against an endpoint across the internet",
            "",
            delivery,
            "",
            managed,
            "",
            "### Warm invocation, loopback",
            "",
            warm,
            "",
            "### Cold start",
            "",
            cold,
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

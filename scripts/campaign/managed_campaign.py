"""The Lambda Managed Instances fault campaign: several invocations at once, over several
worker processes that die, in environments that shut down; nothing lost, nothing doubled.

    .venv/bin/python -m scripts.campaign.managed_campaign --invocations 1000 --workers 4 \\
        --seed 1 --report docs/reliability.md

The campaign function (``function/app.py``) runs under the real runtime client in a
Managed Instances environment (``LocalFunction(concurrency=N)``: ``awslambdaric`` forks N
workers sharing the environment's ``/tmp``), where the SDK delivers in the background.
Invocations go in bursts sent at once from a thread pool, one fault of the seeded schedule
(``managed_faults.py``) per burst. Recovery, accounting, evidence, the collector and the
report are the classic campaign's (see ``report.MANAGED_LEAD`` for the whole story).

The platform's part, as the campaign plays it:

- an invocation whose worker was SIGKILLed never answers; the caller sends it again with
  the same request id, as Lambda retries a failed asynchronous invocation;
- a shutdown is SIGTERM to every process, then SIGKILL after the grace; the invocations it
  cut are not sent again when their handler had tracked its events (the SDK must keep
  them), and are when it had not (nothing of theirs exists yet);
- an environment with fewer than two live workers is replaced (the runtime client starts
  no worker in a dead one's place);
- the log is Lambda's JSON log format (every line a record with a request id), one log
  stream per environment, whose selected records reach the AWS forwarder as subscription
  payloads (``forwarding.py``);
- a deadline is missed when an invocation meant to answer in time answered after it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from doow_serverless_dev.lambda_local import InvocationResult, LocalFunction

from .accounting import InvocationRecord
from .command import add_common_options, check_workdir, finish, progress, run_in
from .driver import CampaignDriver
from .evidence import (
    ENVIRONMENT_ENDED,
    KILLED_SENDING,
    NOTHING,
    TERM_IN_FLIGHT,
    TERM_MID_HANDLER,
    TMP_LOST,
    WORKER_GONE,
    Evidence,
    Observed,
    Reading,
    describe,
    took_effect,
)
from .exports import json_log_record
from .faults import Ending, Fault, FaultKind, Timings
from .forwarding import LogStream, log_stream
from .lambda_campaign import FUNCTION_DIR, invocation_note
from .managed_faults import (
    BURST,
    GRACE_S,
    MANAGED_KINDS,
    make_managed_fault,
    managed_schedule,
)
from .report import LAMBDA_PAGE, MANAGED_SECTION, write_report
from .result import CampaignResult
from .workload import PlannedEvent, plan_events

PLATFORM = (
    "AWS Lambda Managed Instances: the real runtime client (awslambdaric) forking {workers} "
    "workers, local Runtime API"
)
DEFAULT_WORKERS = 4
MIN_LIVE_WORKERS = 2
# How long a burst's fault may take to show once its invocations answered (the senders
# meet the collector after the responses), and a handler to say it tracked.
EFFECT_WAIT_S = 5.0
TRACKED_WAIT_S = 3.0
# A SIGKILLed worker is gone within this; a shut-down environment's processes too.
GONE_WAIT_S = 5.0
# At the end: the senders have delivered what they hold when nothing new was stored for
# QUIET_S (past the SDK's 1 s wake-up and 5 s adoption intervals), or FINAL_WAIT_S passed.
QUIET_S = 6.0
FINAL_WAIT_S = 60.0
# How often the caller sends an invocation again whose worker was killed.
RESENDS = 3
FUNCTION_NAME = "doow-campaign-managed"
_PROGRESS_EVERY = 50


class Environment:
    """One Managed Instances execution environment: workers under the real runtime client
    sharing a ``/tmp``, every line they print kept in its log as a JSON log record."""

    def __init__(
        self,
        name: str,
        tmp: Path,
        log_path: Path,
        *,
        environment: Mapping[str, str],
        workers: int,
        timings: Timings,
        on_line: Callable[[str], None],
    ) -> None:
        self.name = name
        self.tmp = tmp
        self.log_path = log_path
        tmp.mkdir(parents=True, exist_ok=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: TextIO = log_path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        # Invocations in progress, oldest first: a line reaches the campaign without the
        # worker that wrote it, so it is recorded with the newest one's request id (or none).
        self._running: dict[str, None] = {}
        self._on_line = on_line
        self.processes: set[int] = set()  # every process of it seen, for its end
        self.function = LocalFunction(
            "app.handler",
            code_dir=FUNCTION_DIR,
            timeout=timings.function_timeout,
            environment={**environment, "TMPDIR": str(tmp)},
            function_name=FUNCTION_NAME,
            on_output=self._line,
            concurrency=workers,
        )
        self.function.start()

    def _line(self, line: str) -> None:
        with self._lock:
            request_id = next(reversed(self._running), "")
            if not self._log.closed:
                self._log.write(json_log_record(line, request_id) + "\n")
                self._log.flush()
        self._on_line(line)

    def invoke(self, payload: dict[str, Any], request_id: str) -> InvocationResult:
        with self._lock:
            self._running[request_id] = None
        try:
            return self.function.invoke(payload, request_id=request_id)
        finally:
            with self._lock:
                self._running.pop(request_id, None)

    def workers(self) -> list[int]:
        """The live worker processes (remembered, to see them end)."""
        pids = self.function.worker_pids()
        parent = self.function.pid
        self.processes.update(pids if parent is None else [*pids, parent])
        return pids

    def await_workers(self, count: int) -> list[int]:
        """The live workers once ``count`` of them run (at most GONE_WAIT_S)."""
        give_up = time.monotonic() + GONE_WAIT_S
        while len(pids := self.workers()) < count and time.monotonic() < give_up:
            time.sleep(0.05)
        return pids

    def shut_down(self, grace: float) -> bool:
        """SIGTERM to every process, SIGKILL after ``grace``; True when all of them ended."""
        self.workers()
        self.function.stop(grace)
        give_up = time.monotonic() + GONE_WAIT_S
        while any(_alive(pid) for pid in self.processes) and time.monotonic() < give_up:
            time.sleep(0.02)
        return not any(_alive(pid) for pid in self.processes)

    def close(self) -> None:
        self.function.stop(0.0)
        with self._lock:
            self._log.close()


@dataclass
class Call:
    """One invocation of a burst: what it tracks, and its answer to come."""

    number: int
    request_id: str
    events: list[PlannedEvent]
    payload: dict[str, Any]
    ending: Ending
    environment: Environment
    answer: Future[InvocationResult]


class ManagedCampaign(CampaignDriver):
    def __init__(
        self,
        invocations: int,
        seed: int,
        workdir: Path,
        *,
        workers: int = DEFAULT_WORKERS,
        timings: Timings | None = None,
        command: str = "",
        progress: Callable[[str], object] | None = None,
    ) -> None:
        super().__init__(
            invocations,
            seed,
            workdir,
            kinds=MANAGED_KINDS,
            timings=timings,
            command=command,
            progress=progress,
        )
        self.workers = workers
        self._faults = managed_schedule(invocations, seed, self.timings)
        self._chaos = random.Random(f"managed-chaos:{seed}")  # noqa: S311 - victims, moments
        self._pool = ThreadPoolExecutor(BURST[1], thread_name_prefix="campaign-invoke")
        self._environments: list[Environment] = []
        self._never_handed_out = 0  # queued when their environment shut down
        self._killed_workers = 0
        self._replaced = 0  # environments replaced for want of live workers
        self._tmp_lost = 0

    @property
    def _environment(self) -> Environment:
        return self._environments[-1]

    # -- the run -------------------------------------------------------------------------

    def run(self) -> CampaignResult:
        started = time.monotonic()
        self._endpoint.start()
        try:
            self._start_environment(self._fresh_tmp())
            for fault in self._faults:
                self._run_fault(fault)
            self._retry_kinds_without_effect(make_managed_fault)
            self._last_invocations()
            self._lose_everything()
            forwarding = self._forward(self._streams())
            collector = self._endpoint.counters()
        finally:
            for environment in self._environments:
                environment.close()
            self._pool.shutdown(wait=True)
            self._endpoint.stop()
        return self.conclude(
            platform=PLATFORM.format(workers=self.workers),
            started=started,
            forwarding=forwarding,
            collector=collector,
            facts=self._facts(),
        )

    def _facts(self) -> list[str]:
        return [
            f"Environments: {len(self._environments)} started, {self.workers} workers each "
            f"(`AWS_LAMBDA_MAX_CONCURRENCY`); the SDK's own choice of delivery "
            f"(`DOOW_TRACK_DELIVERY` unset: background); {self._tmp_lost} started with "
            f"`/tmp` lost; {self._replaced} replaced for want of live workers.",
            f"Workers SIGKILLed: {self._killed_workers}; invocations sent again (same request "
            f"id) after their worker was killed or their environment shut down before they "
            f"tracked: {self._resent}, of which {self._never_handed_out} were still queued "
            "when it did (never handed out: `init_error`).",
        ]

    def _fresh_tmp(self) -> Path:
        return self.workdir / "tmp" / f"env{len(self._environments) + 1}"

    def _start_environment(self, tmp: Path) -> None:
        name = f"env{len(self._environments) + 1}"
        environment = Environment(
            name,
            tmp,
            self.workdir / "logs" / f"{name}.jsonl",
            environment=self._tracker_environment(self.timings.flush_reserve_ms),
            workers=self.workers,
            timings=self.timings,
            on_line=self._output.on_line,
        )
        self._environments.append(environment)
        environment.await_workers(self.workers)

    # -- one fault ------------------------------------------------------------------------

    def _run_fault(self, fault: Fault) -> None:
        self._keep_enough_workers()
        start = self._observer.reading()
        self._observer.seen_until = start
        observed = self._exercise(fault, start)
        evidence = self._observer.settle(
            fault.kind,
            observed,
            self._endpoint.steps_taken(),
            reserve=self.timings.flush_reserve,
            where=f"invocation {self._number}",
        )
        effected = took_effect(fault.kind, evidence)
        self._ledger.fault(fault.kind, effected=effected, description=describe(fault, evidence))

    def _exercise(self, fault: Fault, start: Reading) -> list[Observed]:
        kind = fault.kind
        if kind is FaultKind.CONNECTION_REFUSED:
            self._endpoint.stop()
            try:
                return self._burst_until_effect(fault, start)
            finally:
                self._endpoint.start()
        self._endpoint.plan(fault.plan)
        if kind is FaultKind.WORKER_KILLED:
            return self._kill_at_random(fault, start)
        if kind is FaultKind.WORKER_KILLED_SENDING:
            return self._kill_while_sending(fault)
        if kind in (FaultKind.SHUTDOWN_TMP_KEPT, FaultKind.SHUTDOWN_TMP_LOST):
            return self._shut_down_in_flight(fault)
        if kind is FaultKind.SHUTDOWN_MID_HANDLER:
            return self._shut_down_mid_handler(fault)
        return self._burst_until_effect(fault, start)

    def _burst_until_effect(self, fault: Fault, start: Reading) -> list[Observed]:
        observed = self._collect(fault, self._send(fault))
        self._await_effect(fault, observed, start)
        return observed

    def _kill_at_random(self, fault: Fault, start: Reading) -> list[Observed]:
        """SIGKILL a random live worker a random moment into the burst: in a handler, in
        its wrapper, while its sender sends, or idle."""
        calls = self._send(fault)
        time.sleep(float(fault.extra["kill_after_ms"]) / 1000)
        live = self._environment.workers()
        killed = self._kill_worker(self._chaos.choice(live)) if live else False
        observed = self._collect(fault, calls, killed=int(killed))
        self._await_effect(fault, observed, start)
        return observed

    def _kill_while_sending(self, fault: Fault) -> list[Observed]:
        """SIGKILL a worker that answered in the burst while a request it sent hangs."""
        calls = self._send(fault)
        observed = self._collect(fault, calls)
        answered = {
            pid
            for call in calls
            if isinstance(pid := _pid(call.answer.result()), int) and call.answer.result().ok
        }
        live = self._environment.workers()
        # A sender sends one request at a time: once the collector holds as many as workers
        # live, each live worker (the victim too) has its own request hanging.
        hanging = self._await(lambda: self._endpoint.held() >= len(live) > 0, EFFECT_WAIT_S)
        victims = sorted(answered & set(live))
        if victims:
            victim = self._chaos.choice(victims)
            if self._kill_worker(victim) and hanging:
                self._observer.sight(KILLED_SENDING)
        return observed

    def _shut_down_in_flight(self, fault: Fault) -> list[Observed]:
        """Shut the environment down once the senders' requests are in flight."""
        observed = self._collect(fault, self._send(fault))
        self._await(lambda: self._endpoint.in_flight() > 0, EFFECT_WAIT_S)
        if self._endpoint.in_flight() > 0:  # slowed or held by the collector, right now
            self._observer.sight(TERM_IN_FLIGHT)
        self._replace_environment(float(fault.extra["grace"]), bool(fault.extra["lose_tmp"]))
        return observed

    def _shut_down_mid_handler(self, fault: Fault) -> list[Observed]:
        """Shut the environment down while handlers work, after they tracked."""
        calls = self._send(fault)
        live = len(self._environment.workers())
        numbers = [call.number for call in calls]
        tracked = self._output.wait_tracked(numbers, min(live, len(calls)), TRACKED_WAIT_S)
        working = {
            call.number for call in calls if call.number in tracked and not call.answer.done()
        }
        if working:
            self._observer.sight(TERM_MID_HANDLER)
        self._replace_environment(float(fault.extra["grace"]), bool(fault.extra["lose_tmp"]))
        return self._collect(fault, calls, kept_by_sdk=working)

    # -- invocations ----------------------------------------------------------------------

    def _send(self, fault: Fault, span: int | None = None) -> list[Call]:
        """A burst of ``span`` (the fault's) invocations, sent at once."""
        environment = self._environment
        calls = []
        for index in range(fault.span if span is None else span):
            self._number += 1
            events = plan_events(
                self._rng,
                self._run_id,
                self._number,
                min_events=fault.min_events,
                rejected_share=fault.rejected_share,
            )
            chosen, events = self._identified(events)
            low, high = fault.extra.get("sleep_ms", (0, 0))
            sleep_ms = self._rng.randint(low, high)
            ending = Ending.IN_TIME
            if fault.kind is FaultKind.PAST_DEADLINE and index == 0:
                sleep_ms = round(self.timings.function_timeout * 1000) + fault.extra["late_ms"]
                ending = Ending.PAST_DEADLINE
            payload = {
                "events": [event.document() for event in events],
                "number": self._number,
                "sleep_ms": sleep_ms,
            }
            answer = self._pool.submit(environment.invoke, payload, chosen)
            calls.append(Call(self._number, chosen, events, payload, ending, environment, answer))
            if self._progress is not None and self._number % _PROGRESS_EVERY == 0:
                self._progress(f"  {self._number}/{self.invocations} invocations")
        return calls

    def _collect(
        self, fault: Fault, calls: list[Call], *, killed: int = 0, kept_by_sdk: Collection[int] = ()
    ) -> list[Observed]:
        """Each call's answer, recorded; a call that never answered is sent again (same
        request id) unless its events were tracked and the SDK must keep them.

        ``killed``: workers the campaign SIGKILLed during the burst (each may cut one
        invocation short); ``kept_by_sdk``: invocations a shutdown cut while their handler
        worked, after tracking.
        """
        observed = []
        cut_short = 0
        shut_down = fault.kind is FaultKind.SHUTDOWN_MID_HANDLER
        for call in calls:
            result = call.answer.result()
            ending, was_killed = call.ending, False
            if result.status == "init_error":
                self._never_handed_out += 1
            if result.status in ("crashed", "init_error"):
                if shut_down:
                    ending, was_killed = Ending.SHUT_DOWN, True
                elif cut_short < killed:
                    ending, was_killed = Ending.SIGKILLED, True
                    cut_short += 1
            observed.append(self._record(fault, call, result, ending, killed=was_killed))
            if result.status in ("crashed", "init_error") and call.number not in kept_by_sdk:
                observed += self._send_again(fault, call)
        return observed

    def _send_again(self, fault: Fault, call: Call) -> list[Observed]:
        """The caller's retry of an invocation that never answered: the same request id,
        the same events (so the same event ids)."""
        observed = []
        for _ in range(RESENDS):
            self._resent += 1
            environment = self._environment
            result = environment.invoke(call.payload, call.request_id)
            retry = Call(
                call.number,
                call.request_id,
                call.events,
                call.payload,
                Ending.IN_TIME,
                environment,
                _done(result),
            )
            observed.append(self._record(fault, retry, result, Ending.IN_TIME, note="sent again"))
            if result.status not in ("crashed", "init_error"):
                break
        return observed

    def _record(
        self,
        fault: Fault,
        call: Call,
        result: InvocationResult,
        ending: Ending,
        *,
        killed: bool = False,
        note: str = "",
    ) -> Observed:
        if result.status == "init_error":
            self._ledger.not_tracked(call.events)  # the handler never ran
        else:
            self._ledger.tracked(call.events)
        parts = (note, fault.detail, invocation_note(result, len(call.events)))
        record = InvocationRecord(
            number=call.number,
            sandbox=call.environment.name,
            kind=fault.kind,
            ending=ending,
            status=result.status,
            margin=result.margin,
            duration=result.duration,
            cold_start=result.cold_start,
            killed=killed,
            answered=result.status in ("success", "error"),
            note="; ".join(part for part in parts if part),
        )
        self._ledger.invocation(record)
        return Observed(record, NOTHING)

    # -- processes ------------------------------------------------------------------------

    def _kill_worker(self, pid: int) -> bool:
        """SIGKILL one worker; True once it is seen gone."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        gone = self._await(lambda: pid not in self._environment.workers(), GONE_WAIT_S)
        if gone:
            self._killed_workers += 1
            self._observer.sight(WORKER_GONE)
        self._leaks.scan_paths([self._environment.tmp])  # what it left in the spool
        return gone

    def _replace_environment(self, grace: float, lose_tmp: bool) -> None:
        """Shut the environment down (SIGTERM, SIGKILL after ``grace``) and start the next,
        with its ``/tmp`` or an empty one."""
        old = self._environment
        if old.shut_down(grace):
            self._observer.sight(ENVIRONMENT_ENDED)
        self._leaks.scan_paths([old.tmp])
        tmp = old.tmp
        if lose_tmp:
            shutil.rmtree(old.tmp, ignore_errors=True)
            self._tmp_lost += 1
            tmp = self._fresh_tmp()
            if not tmp.exists():
                self._observer.sight(TMP_LOST)
        self._start_environment(tmp)

    def _keep_enough_workers(self) -> None:
        if len(self._environment.workers()) < MIN_LIVE_WORKERS:
            self._replaced += 1
            self._replace_environment(GRACE_S[1], lose_tmp=False)

    # -- waiting --------------------------------------------------------------------------

    def _await_effect(self, fault: Fault, observed: list[Observed], start: Reading) -> None:
        """Wait for the burst's fault to show (the senders meet it after the responses)."""
        self._await(
            lambda: took_effect(
                fault.kind,
                Evidence(
                    observed,
                    self._endpoint.steps_taken(),
                    self._observer.reading().since(start),
                ),
            ),
            EFFECT_WAIT_S,
        )

    @staticmethod
    def _await(condition: Callable[[], bool], timeout: float) -> bool:
        give_up = time.monotonic() + timeout
        while not condition():
            if time.monotonic() >= give_up:
                return False
            time.sleep(0.01)
        return True

    # -- the end --------------------------------------------------------------------------

    def _last_invocations(self) -> None:
        """A healthy burst, then time for the senders to deliver what they hold."""
        self._keep_enough_workers()
        self._endpoint.plan(None)
        last = Fault(FaultKind.HEALTHY, span=self.workers, min_events=1)
        for call in self._send(last):
            self._record(last, call, call.answer.result(), Ending.IN_TIME)
        stored, quiet_since = -1, time.monotonic()
        give_up = time.monotonic() + FINAL_WAIT_S
        while time.monotonic() < give_up:
            now = self._endpoint.stored()
            if now != stored or self._endpoint.in_progress():
                stored, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_S:
                break
            time.sleep(0.1)

    def _lose_everything(self) -> None:
        """The last environment shut down, and every /tmp gone with it: the logs remain."""
        last = self._environment
        last.shut_down(GRACE_S[1])
        tmp_root = self.workdir / "tmp"
        self._leaks.scan_paths([tmp_root])
        shutil.rmtree(tmp_root, ignore_errors=True)

    def _streams(self) -> list[LogStream]:
        """Each environment's log (its records), one stream of the function's log group."""
        return [
            log_stream(
                environment.name,
                FUNCTION_NAME,
                environment.log_path.read_text(encoding="utf-8").splitlines(),
            )
            for environment in self._environments
        ]


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _pid(result: InvocationResult) -> object:
    payload = result.payload
    return payload.get("pid") if isinstance(payload, dict) else None


def _done(result: InvocationResult) -> Future[InvocationResult]:
    future: Future[InvocationResult] = Future()
    future.set_result(result)
    return future


# -- the command ----------------------------------------------------------------------------


def run_managed_campaign(
    invocations: int,
    seed: int,
    *,
    workers: int = DEFAULT_WORKERS,
    workdir: Path | None = None,
    keep: bool = False,
    report: Path | None = None,
    timings: Timings | None = None,
    progress: Callable[[str], object] | None = None,
) -> CampaignResult:
    """Run the campaign in ``workdir`` (new or empty; a temporary directory by default) and
    write its section of ``report``."""
    check_arguments(invocations, seed, workers, workdir, timings)
    command = reproduce_command(invocations, workers, seed, report)

    def run(root: Path) -> CampaignResult:
        campaign = ManagedCampaign(
            invocations,
            seed,
            root,
            workers=workers,
            timings=timings,
            command=command,
            progress=progress,
        )
        return campaign.run()

    result = run_in(workdir, keep, run)
    if report is not None:
        write_report(report, result, LAMBDA_PAGE, MANAGED_SECTION.key)
    return result


def check_arguments(
    invocations: int,
    seed: int,
    workers: int,
    workdir: Path | None,
    timings: Timings | None = None,
) -> None:
    """Raise ValueError, saying why, for arguments the campaign cannot run with."""
    managed_schedule(invocations, seed, timings)
    if workers < MIN_LIVE_WORKERS:
        raise ValueError(f"a Managed Instances campaign needs at least {MIN_LIVE_WORKERS} workers")
    check_workdir(workdir)


def reproduce_command(invocations: int, workers: int, seed: int, report: Path | None) -> str:
    words = [
        ".venv/bin/python",
        "-m",
        "scripts.campaign.managed_campaign",
        "--invocations",
        str(invocations),
        "--workers",
        str(workers),
        "--seed",
        str(seed),
    ]
    if report is not None:
        words += ["--report", str(report)]
    return shlex.join(words)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.campaign.managed_campaign",
        description="Fault campaign for Lambda Managed Instances: nothing lost, nothing "
        "doubled, with workers killed and environments shut down.",
    )
    parser.add_argument("--invocations", type=int, default=1000, help="default: 1000")
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help=f"default: {DEFAULT_WORKERS}"
    )
    add_common_options(parser)
    args = parser.parse_args(argv)
    try:
        check_arguments(args.invocations, args.seed, args.workers, args.workdir)
    except ValueError as exc:
        parser.error(str(exc))
    result = run_managed_campaign(
        args.invocations,
        args.seed,
        workers=args.workers,
        workdir=args.workdir,
        keep=args.keep,
        report=args.report,
        progress=progress,
    )
    return finish(result, args)


if __name__ == "__main__":
    sys.exit(main())

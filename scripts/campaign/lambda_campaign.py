"""The Lambda fault campaign: nothing lost, nothing doubled, never the cause of a timeout.

    .venv/bin/python -m scripts.campaign.lambda_campaign --invocations 1000 --seed 1 \\
        --delivery after-response --report docs/reliability.md

``--delivery`` (``sync``, the default, or ``after-response``) sets ``DOOW_TRACK_DELIVERY``
in every sandbox; each mode's run writes its own section of the report. An invocation
ends when it is complete (answered, and released by the SDK's extension in
``after-response`` mode): its margin is measured then, and an extension still holding it
at its deadline is a timeout (:class:`LambdaFunction`).

Runs the campaign function (``function/app.py``) under the real Lambda runtime client
against a local collector that misbehaves as the seeded schedule says, then lets the last
processes send what they hold, kills them and loses their ``/tmp``, hands what their logs
kept to the AWS forwarder as CloudWatch Logs' subscription would (``forwarding.py``; on
Vercel and Azure: the platform's log exports replayed twice), and balances every tracked
event against the collector's store. Exits 1 when an event was
lost or doubled, a deadline was missed because of the SDK, or the API key leaked.

Three simulated sandboxes, each with a spool directory kept across process restarts and a
log file: ``main`` runs most faults; ``no-reserve`` has ``DOOW_TRACK_FLUSH_RESERVE=0`` and
no log lines (``DOOW_TRACK_LOG_UNSENT=0``: no share of the budget kept for them, its spool
works), so its flush runs right into the deadline, to be killed there; ``no-spool`` has a
spool path that cannot be used, so what it cannot deliver goes to its log as
``doow_unsent`` lines.

A fault counts as exercised only when its effect was seen (``evidence.py``): the collector's
answers and the kills are read around every invocation. A kind none of whose faults took
effect is tried again after the schedule, at most ``RETRIES`` times (a kill at the deadline
races the SDK's own end of the flush); the run fails when one still never took effect.

The driver asks little of a sandbox's function (:class:`CampaignFunction`: invoke, its
pid, freeze, stop), and builds it with its :class:`Platform`'s factory: the Lambda harness
by default. The Vercel and Azure campaigns pass their own platform, with a harness for
their runtime, and share the rest, their command line included (:func:`main_for`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from doow_serverless_dev.lambda_local import InvocationResult, LocalFunction

from .accounting import InvocationRecord
from .command import add_common_options, check_workdir, finish, progress, run_in
from .driver import CampaignDriver
from .evidence import Observed, describe, took_effect
from .faults import CLASSIC_KINDS, Ending, Fault, FaultKind, Timings, make_fault, schedule
from .forwarding import Forwarding, LogStream, log_stream
from .replay import ReplayRun
from .report import LAMBDA_PAGE, Page, write_report
from .result import CampaignResult
from .workload import PlannedEvent, plan_events

FUNCTION_DIR = Path(__file__).resolve().parent / "function"
PLATFORM = "AWS Lambda: the real runtime client (awslambdaric), local Runtime API"
MAIN, NO_RESERVE, NO_SPOOL = "main", "no-reserve", "no-spool"
# The faults run in a sandbox of their own; every other one runs in MAIN.
SANDBOX_FOR = {FaultKind.DEADLINE_KILL: NO_RESERVE, FaultKind.LOG_FALLBACK: NO_SPOOL}
# The SDK's delivery modes on classic Lambda the campaign runs (DOOW_TRACK_DELIVERY).
DELIVERIES = ("sync", "after-response")
# How the error type of an invocation that ended after its response says so.
AFTER_ITS_RESPONSE = " after its response"
_PROGRESS_EVERY = 50
_OUTPUT_SETTLE_S = 0.3

Output = Callable[[str], None]


# -- the platform ---------------------------------------------------------------------------


class CampaignFunction(Protocol):
    """What the campaign asks of a sandbox's function, whatever platform's harness runs it.

    ``invoke`` runs one invocation and reports how it ended as the Lambda harness does
    (:class:`InvocationResult`, see :func:`invocation_result`); the next invocation after a
    process ended starts a new one in the same sandbox, as a cold start. ``pid`` is the
    running process's (``None`` when there is none), which the campaign may SIGKILL.
    ``freeze`` suspends the idle process as the platform does between invocations (or does
    nothing), raising ``RuntimeError`` when it cannot; ``stop`` kills the process.
    """

    @property
    def pid(self) -> int | None: ...

    def invoke(self, payload: dict[str, Any], /) -> InvocationResult: ...

    def freeze(self) -> None: ...

    def stop(self) -> None: ...


# One sandbox's function, from its name, environment (``DOOW_TRACK_*``, with the sandbox's
# spool directory), the campaign's timings and where each line of its output goes.
FunctionFactory = Callable[[str, Mapping[str, str], Timings, Output], CampaignFunction]


class LambdaFunction:
    """The Lambda harness's function, each invocation judged at its completion.

    An invocation is over when it is complete: answered, and released by every extension
    registered for INVOKE (the SDK's, in after-response mode, flushes in that turn). The
    margin is what was left of the deadline then. One an extension still held at its
    deadline was ended with its environment, as Lambda does: a ``timeout``, though the
    caller had its answer; one whose process died after answering, before it was complete
    (a SIGKILL in the extension's flush), ``crashed``.
    """

    def __init__(self, function: LocalFunction) -> None:
        self._function = function

    @property
    def pid(self) -> int | None:
        return self._function.pid

    def invoke(self, payload: dict[str, Any], request_id: str | None = None) -> InvocationResult:
        kills = self._function.kills
        result = self._function.invoke(payload, request_id=request_id)
        if result.status not in ("success", "error"):
            return result
        if result.completed is None:
            killed_at_deadline = self._function.kills > kills
            status = "timeout" if killed_at_deadline else "crashed"
            why = "Sandbox.Timedout" if killed_at_deadline else "Runtime.ExitError"
            return dataclasses.replace(
                result, status=status, error_type=why + AFTER_ITS_RESPONSE, margin=None
            )
        return dataclasses.replace(result, margin=self._function.timeout - result.completed)

    def freeze(self) -> None:
        self._function.freeze()

    def stop(self) -> None:
        self._function.stop()


def function_name(sandbox: str) -> str:
    """The Lambda function a sandbox is an execution environment of (its log group's name)."""
    return f"doow-campaign-{sandbox}"


def lambda_function(
    name: str, environment: Mapping[str, str], timings: Timings, on_output: Output
) -> LambdaFunction:
    """The campaign function (``function/app.py``) under the real Lambda runtime client."""
    return LambdaFunction(
        LocalFunction(
            "app.handler",
            code_dir=FUNCTION_DIR,
            timeout=timings.function_timeout,
            environment=environment,
            function_name=function_name(name),
            on_output=on_output,
        )
    )


def invocation_result(
    status: str,
    body: bytes = b"",
    *,
    error: str | None,
    cold_start: bool,
    duration: float | None = None,
    margin: float | None = None,
) -> InvocationResult:
    """An invocation's end, shaped as the campaign reads it (for other platforms' harnesses).

    ``status`` is the Lambda harness's: ``success``, ``error``, ``timeout`` (killed at the
    deadline), ``crashed`` or ``init_error``; ``margin`` is what was left of the deadline.
    """
    return InvocationResult(
        request_id="",
        status=status,
        body=body,
        error_type=error if status != "success" else None,
        cold_start=cold_start,
        duration=duration,
        margin=margin,
    )


@dataclass(frozen=True)
class Platform:
    """A platform the campaign drives: its functions, and how its command and report read."""

    name: str  # the report's "platform" line
    function: FunctionFactory
    module: str  # python -m ...
    integration: str  # "Fault campaign for the ... integration"
    count_option: str  # "--invocations", "--requests"
    default_count: int
    page: Page  # the report
    # A sandbox's log lines, as its platform's tools export them for ``replay --log`` (the
    # recovery); None: they reach the AWS forwarder as subscription payloads instead.
    export: Callable[[list[str]], str] | None
    export_suffix: str  # the export file's ending
    # The SDK's delivery modes a run may set (the first by default), each with the section
    # of the page its run writes; none: the SDK's own choice, and the run writes the page.
    sections: Mapping[str, str] = field(default_factory=dict)
    # Lambda's own behaviour played: the campaign picks each request id, some invocations
    # track without keys (ids derived from it), and one whose process was killed is sent
    # again with the same request id and event, as Lambda retries an asynchronous invocation.
    retries_same_request: bool = False

    @property
    def deliveries(self) -> tuple[str, ...]:
        return tuple(self.sections)

    @property
    def description(self) -> str:
        return (
            f"Fault campaign for the {self.integration} integration: nothing lost, nothing "
            "doubled, never the cause of a timeout."
        )


LAMBDA = Platform(
    name=PLATFORM,
    function=lambda_function,
    module="scripts.campaign.lambda_campaign",
    integration="Lambda",
    count_option="--invocations",
    default_count=1000,
    page=LAMBDA_PAGE,
    export=None,  # the forwarder
    export_suffix="",
    sections={delivery: f"lambda-{delivery}" for delivery in DELIVERIES},
    retries_same_request=True,
)


# -- the driver -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What an invocation is sent with, each time it is sent."""

    number: int
    events: list[PlannedEvent]
    payload: dict[str, Any]
    request_id: str | None  # None: the harness picks one


def _call(sandbox: Sandbox, attempt: Attempt) -> InvocationResult:
    function = sandbox.function
    if attempt.request_id is not None and isinstance(function, LambdaFunction):
        return function.invoke(attempt.payload, attempt.request_id)
    return function.invoke(attempt.payload)


class Sandbox:
    """One execution environment: a spool directory and a log kept across process restarts."""

    def __init__(
        self,
        name: str,
        root: Path,
        environment: Mapping[str, str],
        timings: Timings,
        on_line: Output,
        *,
        function: FunctionFactory = lambda_function,
        spool_usable: bool = True,
    ) -> None:
        self.name = name
        self.spool = root / "spool" / name
        self.spool_usable = spool_usable
        self.spool.parent.mkdir(parents=True, exist_ok=True)
        if spool_usable:
            self.spool.mkdir(exist_ok=True)
        else:
            self.spool.write_text("a file where the spool directory should be\n")
        (root / "logs").mkdir(parents=True, exist_ok=True)
        self.log_path = root / "logs" / f"{name}.log"
        self._log: TextIO = self.log_path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._last_line = time.monotonic()
        self._on_line = on_line
        self.function: CampaignFunction = function(
            name, {**environment, "DOOW_TRACK_SPOOL_DIR": str(self.spool)}, timings, self._line
        )

    def _line(self, line: str) -> None:
        with self._lock:
            self._last_line = time.monotonic()
            if not self._log.closed:
                self._log.write(line + "\n")
                self._log.flush()
        self._on_line(line)

    def lines(self) -> list[str]:
        """Every line its processes printed so far."""
        return self.log_path.read_text(encoding="utf-8").splitlines()

    def lose_tmp(self) -> None:
        """The next process starts with an empty /tmp, as in a new sandbox: the spool of the
        processes before it is gone."""
        if self.spool_usable:
            shutil.rmtree(self.spool, ignore_errors=True)
            self.spool.mkdir()

    def reclaim(self) -> None:
        """Kill the process, as Lambda reclaims an environment, and keep its last lines."""
        self.function.stop()
        until = time.monotonic() + 5.0
        while time.monotonic() < until:
            with self._lock:
                if time.monotonic() - self._last_line >= _OUTPUT_SETTLE_S:
                    break
            time.sleep(0.05)

    def close(self) -> None:
        self.function.stop()
        with self._lock:
            self._log.close()


class LambdaCampaign(CampaignDriver):
    """The campaign, on AWS Lambda unless ``platform`` says otherwise."""

    def __init__(
        self,
        invocations: int,
        seed: int,
        workdir: Path,
        *,
        platform: Platform = LAMBDA,
        delivery: str | None = None,
        timings: Timings | None = None,
        command: str = "",
        progress: Callable[[str], object] | None = None,
    ) -> None:
        super().__init__(
            invocations,
            seed,
            workdir,
            kinds=CLASSIC_KINDS,
            timings=timings,
            command=command,
            progress=progress,
        )
        self.platform = platform
        self.delivery = delivery
        self._faults = schedule(invocations, seed, self.timings)
        self._sandboxes: dict[str, Sandbox] = {}
        self._attempts: dict[int, Attempt] = {}

    # -- the run -------------------------------------------------------------------------

    def run(self) -> CampaignResult:
        started = time.monotonic()
        self._endpoint.start()
        try:
            self._sandboxes = {
                name: Sandbox(
                    name,
                    self.workdir,
                    self._environment(reserve_ms),
                    self.timings,
                    self._output.on_line,
                    function=self.platform.function,
                    spool_usable=name != NO_SPOOL,
                )
                for name, reserve_ms in (
                    (MAIN, self.timings.flush_reserve_ms),
                    (NO_RESERVE, 0),
                    (NO_SPOOL, self.timings.flush_reserve_ms),
                )
            }
            for fault in self._faults:
                self._run_fault(fault)
            self._retry_kinds_without_effect(make_fault)
            self._last_invocations()
            for sandbox in self._sandboxes.values():
                sandbox.reclaim()
            self._leaks.scan_paths(sandbox.spool for sandbox in self._sandboxes.values())
            # The sandboxes are gone, and their /tmp with them: what is left is the log.
            for sandbox in self._sandboxes.values():
                sandbox.lose_tmp()
            replays, stored_by_replay, forwarding = self._recovery()
            collector = self._endpoint.counters()
        finally:
            for sandbox in self._sandboxes.values():
                sandbox.close()
            self._endpoint.stop()
        return self.conclude(
            platform=self.platform.name,
            started=started,
            replays=replays,
            stored_by_replay=stored_by_replay,
            forwarding=forwarding,
            collector=collector,
            delivery=self.delivery or "",
        )

    def _recovery(self) -> tuple[list[ReplayRun], list[int], Forwarding | None]:
        """What the logs kept, recovered as the platform allows: through the forwarder, or
        the platform's exports replayed twice."""
        if self.platform.export is None:
            return [], [], self._forward(self._streams())
        replays, stored_by_replay = self._recover(self._exports())
        return replays, stored_by_replay, None

    def _environment(self, reserve_ms: int) -> dict[str, str]:
        environment = self._tracker_environment(reserve_ms)
        if self.delivery is not None:
            environment["DOOW_TRACK_DELIVERY"] = self.delivery
        return environment

    def _run_fault(self, fault: Fault) -> None:
        invocations = self._exercise(fault)
        evidence = self._observer.settle(
            fault.kind,
            invocations,
            self._endpoint.steps_taken(),
            reserve=0.0 if fault.kind is FaultKind.DEADLINE_KILL else self.timings.flush_reserve,
            where=f"invocation {self._number}",
        )
        effected = took_effect(fault.kind, evidence)
        self._ledger.fault(fault.kind, effected=effected, description=describe(fault, evidence))
        retry_after = fault.extra.get("retry_after")
        if retry_after is not None and effected:
            # The SDK sends nothing more until this has passed: the next fault would find a
            # client that does not send, and not take effect.
            time.sleep(float(retry_after))

    def _exercise(self, fault: Fault) -> list[Observed]:
        main = self._sandboxes[MAIN]
        if fault.kind is FaultKind.CONNECTION_REFUSED:
            self._endpoint.stop()
            try:
                return [self._invoke(main, fault) for _ in range(fault.span)]
            finally:
                self._endpoint.start()
        self._endpoint.plan(fault.plan)
        if fault.kind is FaultKind.STALE_KEEPALIVE:
            first = self._invoke(main, fault)  # opens the keep-alive connection
            try:
                main.function.freeze()
            except RuntimeError as exc:
                self._notes.append(f"invocation {self._number}: could not freeze: {exc}")
            time.sleep(float(fault.extra["pause"]))  # the collector closes the idle connection
            return [first, self._invoke(main, fault)]
        sandbox = self._sandboxes[SANDBOX_FOR.get(fault.kind, MAIN)]
        invocations = [self._invoke(sandbox, fault) for _ in range(fault.span)]
        if fault.extra.get("reclaim"):
            sandbox.reclaim()  # killed while idle, as Lambda reclaims an environment
        if fault.extra.get("lose_tmp"):
            sandbox.lose_tmp()  # restarted in a new sandbox: only the log is left
        return invocations + self._retries(sandbox, fault, invocations)

    def _retries(
        self, sandbox: Sandbox, fault: Fault, invocations: list[Observed]
    ) -> list[Observed]:
        """Lambda's retry of an asynchronous invocation whose process died: the same event,
        the same request id, in whatever process serves it next (after a lost ``/tmp``, a
        new one). Its events must be counted once, however much of the first attempt's
        delivery reached the server, or only its log."""
        if not self.platform.retries_same_request:
            return []
        retries = []
        for observed in invocations:
            first = self._attempts.get(observed.record.number)
            # Answered before it died (in the extension's flush): no error, no retry.
            if first is None or observed.record.status != "crashed" or observed.record.answered:
                continue
            self._resent += 1
            retries.append(self._attempt(sandbox, fault, first, Ending.IN_TIME, note="sent again"))
        return retries

    def _last_invocations(self) -> None:
        """One healthy invocation per sandbox, so its last process sends what it holds."""
        self._endpoint.plan(None)
        for sandbox in self._sandboxes.values():
            self._invoke(sandbox, Fault(FaultKind.HEALTHY, min_events=1), counted=False)

    def _invoke(self, sandbox: Sandbox, fault: Fault, *, counted: bool = True) -> Observed:
        self._number += 1
        number = self._number
        events = plan_events(
            self._rng,
            self._run_id,
            number,
            min_events=fault.min_events,
            rejected_share=fault.rejected_share,
        )
        chosen: str | None = None  # the harness picks one
        if self.platform.retries_same_request:
            chosen, events = self._identified(events)
        payload: dict[str, Any] = {
            "events": [event.document() for event in events],
            "number": number,
            "track_last": fault.track_last,
        }
        if fault.leave_ms is not None:
            payload["leave_ms"] = fault.leave_ms
        else:
            payload["sleep_ms"] = self._rng.randint(0, 20)
        attempt = Attempt(number, events, payload, chosen)
        self._attempts[number] = attempt
        observed = self._attempt(sandbox, fault, attempt, fault.ending, kill=True)
        if counted and self._progress is not None and number % _PROGRESS_EVERY == 0:
            self._progress(f"  {number}/{self.invocations} invocations")
        return observed

    def _attempt(
        self,
        sandbox: Sandbox,
        fault: Fault,
        attempt: Attempt,
        ending: Ending,
        *,
        kill: bool = False,
        note: str = "",
    ) -> Observed:
        """One attempt at an invocation: run it (killed as the fault says, when ``kill``),
        and record how it ended."""
        before = self._observer.reading()
        number, events = attempt.number, attempt.events
        killed = False
        if kill and "kill_after_ms" in fault.extra:
            result, killed = self._invoke_and_kill_in_flush(
                sandbox, attempt, float(fault.extra["kill_after_ms"]) / 1000
            )
        elif kill and ending is Ending.SIGKILLED:
            result, killed = self._invoke_and_kill(sandbox, attempt)
        else:
            result = _call(sandbox, attempt)
            killed = ending is Ending.KILLED_AT_DEADLINE and result.status == "timeout"
        if result.status in ("timeout", "crashed"):
            self._leaks.scan_paths([sandbox.spool])  # what the killed process left
        if result.status == "init_error":
            self._ledger.not_tracked(events)  # the handler never ran
        else:
            self._ledger.tracked(events)
        note = "; ".join(
            part for part in (note, fault.detail, invocation_note(result, len(events))) if part
        )
        record = InvocationRecord(
            number=number,
            sandbox=sandbox.name,
            kind=fault.kind,
            ending=ending,
            status=result.status,
            margin=result.margin,
            duration=result.duration,
            cold_start=result.cold_start,
            killed=killed,
            answered=result.status in ("success", "error")
            or (result.error_type or "").endswith(AFTER_ITS_RESPONSE),
            note=note,
        )
        self._ledger.invocation(record)
        self._observer.seen_until = self._observer.reading()
        return Observed(record, self._observer.seen_until.since(before))

    def _invoke_and_kill(self, sandbox: Sandbox, attempt: Attempt) -> tuple[InvocationResult, bool]:
        """Invoke; SIGKILL the process as soon as a request of its flush hangs."""
        answers: list[InvocationResult] = []
        failures: list[BaseException] = []

        def invoke() -> None:
            try:
                answers.append(_call(sandbox, attempt))
            except BaseException as exc:
                failures.append(exc)

        thread = threading.Thread(target=invoke, name="campaign-invoke", daemon=True)
        thread.start()
        killed = False
        while thread.is_alive():
            if self._endpoint.steps_taken() >= 1:  # the hang step was taken
                pid = sandbox.function.pid
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        killed = True
                break
            time.sleep(0.002)
        thread.join()
        if failures:
            raise failures[0]
        return answers[0], killed

    def _invoke_and_kill_in_flush(
        self, sandbox: Sandbox, attempt: Attempt, after: float
    ) -> tuple[InvocationResult, bool]:
        """Invoke; SIGKILL the process ``after`` seconds once its handler said it returns
        (its flush has begun), unless the invocation is over by then."""
        answers: list[InvocationResult] = []
        failures: list[BaseException] = []

        def invoke() -> None:
            try:
                answers.append(_call(sandbox, attempt))
            except BaseException as exc:
                failures.append(exc)

        thread = threading.Thread(target=invoke, name="campaign-invoke", daemon=True)
        thread.start()
        killed = False
        returning = self._output.wait_returning(
            attempt.number, thread.is_alive, timeout=self.timings.function_timeout + 5
        )
        if returning:
            thread.join(after)
            pid = sandbox.function.pid
            if thread.is_alive() and pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed = True
        thread.join()
        if failures:
            raise failures[0]
        return answers[0], killed

    # -- after the invocations -----------------------------------------------------------

    def _exports(self) -> list[Path]:
        """Each sandbox's log, exported as the platform's tools export it."""
        export = self.platform.export
        assert export is not None, "a platform whose logs go to the forwarder"
        exports = self.workdir / "exports"
        exports.mkdir(exist_ok=True)
        paths = []
        for sandbox in self._sandboxes.values():
            path = exports / f"{sandbox.name}{self.platform.export_suffix}"
            path.write_text(export(sandbox.lines()), encoding="utf-8")
            paths.append(path)
        return paths

    def _streams(self) -> list[LogStream]:
        """Each sandbox's log, as its function's log group holds it (one stream each)."""
        return [
            log_stream(sandbox.name, function_name(sandbox.name), sandbox.lines())
            for sandbox in self._sandboxes.values()
        ]


def invocation_note(result: InvocationResult, tracked: int) -> str:
    """What the record of an invocation notes about how it ended (empty: as it should)."""
    if result.status in ("success", "error"):
        payload = result.payload
        if result.status == "success" and isinstance(payload, dict):
            if payload.get("tracked") != tracked:
                return f"the handler tracked {payload.get('tracked')} of {tracked} events"
            return ""
        return f"{result.error_type}: {str(payload)[:200]}"
    return result.error_type or ""


# -- the command (every platform's) --------------------------------------------------------


def run_campaign(
    invocations: int,
    seed: int,
    *,
    platform: Platform = LAMBDA,
    delivery: str | None = None,
    workdir: Path | None = None,
    keep: bool = False,
    report: Path | None = None,
    timings: Timings | None = None,
    progress: Callable[[str], object] | None = None,
) -> CampaignResult:
    """Run ``platform``'s campaign in ``workdir`` (a fresh temporary directory by default).

    ``delivery``: the SDK's delivery mode, one of the platform's (its first by default);
    the run writes that mode's section of the report. ``workdir`` must be new or empty: the
    balance counts everything in the store. A temporary directory is removed afterwards
    unless ``keep`` or the campaign failed.
    """
    check_arguments(invocations, seed, workdir, timings)
    if platform.deliveries:
        delivery = delivery or platform.deliveries[0]
        if delivery not in platform.deliveries:
            raise ValueError(f"delivery must be one of {', '.join(platform.deliveries)}")
    elif delivery is not None:
        raise ValueError(f"the {platform.integration} campaign has no delivery modes")
    command = reproduce_command(invocations, seed, report, platform=platform, delivery=delivery)

    def run(root: Path) -> CampaignResult:
        campaign = LambdaCampaign(
            invocations,
            seed,
            root,
            platform=platform,
            delivery=delivery,
            timings=timings,
            command=command,
            progress=progress,
        )
        return campaign.run()

    result = run_in(workdir, keep, run)
    if report is not None:
        key = platform.sections.get(delivery) if delivery is not None else None
        write_report(report, result, platform.page, key)
    return result


def check_arguments(
    invocations: int, seed: int, workdir: Path | None, timings: Timings | None = None
) -> None:
    """Raise ValueError, saying why, for arguments a campaign cannot run with."""
    schedule(invocations, seed, timings)
    check_workdir(workdir)


def reproduce_command(
    invocations: int,
    seed: int,
    report: Path | None,
    *,
    platform: Platform = LAMBDA,
    delivery: str | None = None,
) -> str:
    words = [
        ".venv/bin/python",
        "-m",
        platform.module,
        platform.count_option,
        str(invocations),
        "--seed",
        str(seed),
    ]
    if delivery is not None:
        words += ["--delivery", delivery]
    if report is not None:
        words += ["--report", str(report)]
    return shlex.join(words)


def main_for(platform: Platform, argv: Sequence[str] | None = None) -> int:
    """The command line of ``platform``'s campaign; 0 when it passed, 1 otherwise."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {platform.module}", description=platform.description
    )
    parser.add_argument(
        platform.count_option,
        dest="count",
        type=int,
        default=platform.default_count,
        metavar=platform.count_option.removeprefix("--").upper(),
        help=f"default: {platform.default_count}",
    )
    if platform.deliveries:
        parser.add_argument(
            "--delivery",
            choices=platform.deliveries,
            default=platform.deliveries[0],
            help=f"DOOW_TRACK_DELIVERY in every sandbox (default: {platform.deliveries[0]})",
        )
    add_common_options(parser)
    args = parser.parse_args(argv)
    try:
        check_arguments(args.count, args.seed, args.workdir)
    except ValueError as exc:
        parser.error(str(exc))
    result = run_campaign(
        args.count,
        args.seed,
        platform=platform,
        delivery=getattr(args, "delivery", None),
        workdir=args.workdir,
        keep=args.keep,
        report=args.report,
        progress=progress,
    )
    return finish(result, args)


def main(argv: Sequence[str] | None = None) -> int:
    return main_for(LAMBDA, argv)


if __name__ == "__main__":
    sys.exit(main())

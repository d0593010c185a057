"""The Lambda fault campaign: nothing lost, nothing doubled, never the cause of a timeout.

    .venv/bin/python -m scripts.campaign.lambda_campaign --invocations 1000 --seed 1 \\
        --report docs/reliability.md

Runs the campaign function (``function/app.py``) under the real Lambda runtime client
against a local collector that misbehaves as the seeded schedule says, then lets the last
processes send what they hold, kills them, replays the spool directories and logs twice,
and balances every tracked event against the collector's store. Exits 1 when an event was
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
import json
import os
import random
import secrets
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from doow_serverless_dev.collector import Collector
from doow_serverless_dev.lambda_local import InvocationResult, LocalFunction

from .accounting import InvocationRecord, Ledger, balance
from .evidence import NOTHING, RETRIES, Evidence, Observed, Reading, took_effect
from .exports import cloudwatch_export
from .faults import Ending, Fault, FaultKind, Timings, make_fault, schedule
from .leaks import LeakScan
from .replay import ReplayRun, replay
from .report import INTRO, OTHER_PLATFORMS, TITLE, render
from .result import CampaignResult
from .store import read_store
from .workload import REJECTED_LICENSE, plan_events

FUNCTION_DIR = Path(__file__).resolve().parent / "function"
PLATFORM = "AWS Lambda: the real runtime client (awslambdaric), local Runtime API"
MAIN, NO_RESERVE, NO_SPOOL = "main", "no-reserve", "no-spool"
# The faults run in a sandbox of their own; every other one runs in MAIN.
SANDBOX_FOR = {FaultKind.DEADLINE_KILL: NO_RESERVE, FaultKind.LOG_FALLBACK: NO_SPOOL}
# The line the campaign function prints for events the server refused for good.
REJECTED_MARKER = '{"campaign_rejected"'
# The SDK's last resort for events it can neither deliver nor spool.
UNSENT_MARKER = '{"doow_unsent"'
# The line the campaign function prints for any other delivery error the SDK reports.
UNDELIVERED_MARKER = '{"campaign_undelivered"'
# The line a campaign function prints just before its handler returns (its flush begins).
RETURNING_MARKER = '{"campaign_returning"'
REFUSED_CONNECTION = "Connection refused"
_COUNTERS = ("accepted", "duplicates", "rejected", "batches", "requests", "connections")
_PROGRESS_EVERY = 50
_OUTPUT_SETTLE_S = 0.3
# After a fault: how long the collector may take to end the requests it is still handling,
# and the functions' output to arrive (a line printed during the flush can come just after).
_SETTLE_S = 10.0
_OUTPUT_GRACE_S = 0.5

Output = Callable[[str], None]


class Endpoint:
    """The collector, which can be stopped and restarted on the same port and database."""

    def __init__(self, db_path: Path, api_key: str, idle_timeout: float) -> None:
        self._db_path = db_path
        self._api_key = api_key
        self._idle_timeout = idle_timeout
        self._collector: Collector | None = None
        self._port = 0
        self.restarts = 0
        self._totals: Counter[str] = Counter()
        self._by_status: Counter[str] = Counter()

    def start(self) -> None:
        for attempt in range(50):
            try:
                collector = Collector(
                    port=self._port,
                    db_path=self._db_path,
                    api_keys=[self._api_key],
                    idle_timeout=self._idle_timeout,
                    reject_licenses=[REJECTED_LICENSE],
                ).start()
            except OSError:
                if attempt == 49:
                    raise
                time.sleep(0.1)  # the port is still being released
                continue
            break
        if self._port:
            self.restarts += 1
        self._port = collector.port
        self._collector = collector

    def stop(self) -> None:
        collector, self._collector = self._collector, None
        if collector is None:
            return
        stats = collector.stats()
        self._totals.update({name: int(stats.get(name, 0)) for name in _COUNTERS})
        self._by_status.update(stats.get("requests_by_status", {}))
        collector.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def running(self) -> Collector:
        if self._collector is None:
            raise RuntimeError("the collector is stopped")
        return self._collector

    def plan(self, plan: Mapping[str, Any] | None) -> None:
        if plan is None:
            self.running.clear_faults()
        else:
            self.running.set_faults(json.loads(json.dumps(plan)))

    def steps_taken(self) -> int:
        """How many requests have taken a step of the current plan's script (0: stopped)."""
        if self._collector is None:
            return 0
        return int(self._collector.faults()["position"])

    def in_progress(self) -> int:
        """Ingest requests the collector is handling now, a held hang aside (0: stopped)."""
        if self._collector is None:
            return 0
        return int(self._collector.stats()["ingest_in_progress"])

    def stored(self) -> int:
        return int(self.running.stats()["events_stored"])

    def counters(self) -> dict[str, Any]:
        """Counters summed over every run of the collector so far (stopped ones included)."""
        totals = Counter(self._totals)
        by_status = Counter(self._by_status)
        if self._collector is not None:
            stats = self._collector.stats()
            totals.update({name: int(stats.get(name, 0)) for name in _COUNTERS})
            by_status.update(stats.get("requests_by_status", {}))
        return {**totals, "requests_by_status": dict(by_status), "restarts": self.restarts}


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


def lambda_function(
    name: str, environment: Mapping[str, str], timings: Timings, on_output: Output
) -> LocalFunction:
    """The campaign function (``function/app.py``) under the real Lambda runtime client."""
    return LocalFunction(
        "app.handler",
        code_dir=FUNCTION_DIR,
        timeout=timings.function_timeout,
        environment=environment,
        function_name=f"doow-campaign-{name}",
        on_output=on_output,
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
    title: str
    intro: str
    export: Callable[[list[str]], str]  # a sandbox's log lines, as its platform exports them
    export_suffix: str  # the export file's ending
    epilogue: str = ""  # the report's last section

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
    title=TITLE,
    intro=INTRO,
    export=cloudwatch_export,
    export_suffix=".json",
    epilogue=OTHER_PLATFORMS,
)


# -- the driver -----------------------------------------------------------------------------


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


class LambdaCampaign:
    """The campaign, on AWS Lambda unless ``platform`` says otherwise."""

    def __init__(
        self,
        invocations: int,
        seed: int,
        workdir: Path,
        *,
        platform: Platform = LAMBDA,
        timings: Timings | None = None,
        command: str = "",
        progress: Callable[[str], object] | None = None,
    ) -> None:
        self.platform = platform
        self.invocations = invocations
        self.seed = seed
        self.workdir = workdir
        self.timings = timings or Timings()
        self.command = command
        self._progress = progress
        self._faults = schedule(invocations, seed, self.timings)
        self._rng = random.Random(f"workload:{seed}")  # noqa: S311 - reproducible
        self._retry_rng = random.Random(f"retries:{seed}")  # noqa: S311 - reproducible
        self._retried_invocations = 0
        self._run_id = f"s{seed}-{secrets.token_hex(4)}"
        self.api_key = "dk_campaign_" + secrets.token_hex(16)
        self._ledger = Ledger()
        # Also searched as the run goes: spool files come and go.
        self._leaks = LeakScan(self.api_key)
        self._lock = threading.Lock()
        self._number = 0
        self._unsent_lines = 0
        self._refused_connections = 0
        self._seen_until = NOTHING  # what was seen by the end of the last invocation
        # Invocations whose handler said it is returning: their flush has begun.
        self._returning: set[int] = set()
        self._returned = threading.Condition(self._lock)
        self._notes: list[str] = []
        self._endpoint = Endpoint(
            workdir / "collector.sqlite3", self.api_key, self.timings.idle_timeout
        )
        self._sandboxes: dict[str, Sandbox] = {}

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
                    self._on_line,
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
            self._retry_kinds_without_effect()
            self._last_invocations()
            for sandbox in self._sandboxes.values():
                sandbox.reclaim()
            self._leaks.scan_paths(sandbox.spool for sandbox in self._sandboxes.values())
            # The sandboxes are gone, and their /tmp with them: what is left is the log.
            for sandbox in self._sandboxes.values():
                sandbox.lose_tmp()
            replays, stored_by_replay = self._replay_twice()
            collector = self._endpoint.counters()
        finally:
            for sandbox in self._sandboxes.values():
                sandbox.close()
            self._endpoint.stop()
        store = read_store(self.workdir / "collector.sqlite3")
        leaks = self._leaks
        leaks.scan_paths([self.workdir])  # logs, spool (after replay) and the store
        for index, run in enumerate(replays, start=1):
            leaks.scan_text(f"replay {index} stdout", run.stdout)
            leaks.scan_text(f"replay {index} stderr", run.stderr)
        return CampaignResult(
            platform=self.platform.name,
            command=self.command,
            seed=self.seed,
            scheduled_invocations=self.invocations,
            retried_invocations=self._retried_invocations,
            timings=self.timings,
            balance=balance(self._ledger, store),
            replays=replays,
            stored_by_replay=stored_by_replay,
            leaks=leaks,
            collector=collector,
            unsent_log_lines=self._unsent_lines,
            wall_time=time.monotonic() - started,
            workdir=str(self.workdir),
            notes=self._notes,
        )

    def _environment(self, reserve_ms: int) -> dict[str, str]:
        environment = {
            "DOOW_TRACK_API_KEY": self.api_key,
            "DOOW_TRACK_ENDPOINT": self._endpoint.url,
            "DOOW_TRACK_FLUSH_TIMEOUT": str(self.timings.flush_timeout_ms),
            "DOOW_TRACK_FLUSH_RESERVE": str(reserve_ms),
        }
        return environment

    def _run_fault(self, fault: Fault) -> None:
        invocations = self._exercise(fault)
        evidence = self._settle(fault.kind, invocations, self._endpoint.steps_taken())
        effected = took_effect(fault.kind, evidence)
        self._ledger.fault(fault.kind, effected=effected, description=_describe(fault, evidence))
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
        return invocations

    def _settle(self, kind: FaultKind, invocations: list[Observed], steps_taken: int) -> Evidence:
        """End the fault: release held requests, let the collector finish the others; what
        was seen, the late answers and output included."""
        self._endpoint.plan(None)
        give_up = time.monotonic() + _SETTLE_S
        while self._endpoint.in_progress() and time.monotonic() < give_up:
            time.sleep(0.01)
        if self._endpoint.in_progress():
            self._notes.append(f"invocation {self._number}: the collector did not settle")
        output_by = time.monotonic() + _OUTPUT_GRACE_S
        while True:
            evidence = Evidence(
                invocations,
                steps_taken,
                self._reading().since(self._seen_until),
                reserve=0.0 if kind is FaultKind.DEADLINE_KILL else self.timings.flush_reserve,
            )
            if took_effect(kind, evidence) or time.monotonic() >= output_by:
                return evidence
            time.sleep(0.02)

    def _reading(self) -> Reading:
        counters = self._endpoint.counters()
        with self._lock:
            refused, unsent = self._refused_connections, self._unsent_lines
        return Reading(
            answers=Counter(counters["requests_by_status"]),
            batches=int(counters.get("batches", 0)),
            connections=int(counters.get("connections", 0)),
            refused_connections=refused,
            unsent_lines=unsent,
        )

    def _retry_kinds_without_effect(self) -> None:
        """Run a new fault of each kind none of whose faults took effect, until one does."""
        for kind in FaultKind:
            for _ in range(RETRIES):
                if self._ledger.effected[kind] or not self._ledger.faults[kind]:
                    break
                before = self._number
                self._run_fault(make_fault(kind, self._retry_rng, self.timings))
                self._retried_invocations += self._number - before

    def _last_invocations(self) -> None:
        """One healthy invocation per sandbox, so its last process sends what it holds."""
        self._endpoint.plan(None)
        for sandbox in self._sandboxes.values():
            self._invoke(sandbox, Fault(FaultKind.HEALTHY, min_events=1), counted=False)

    def _invoke(self, sandbox: Sandbox, fault: Fault, *, counted: bool = True) -> Observed:
        before = self._reading()
        self._number += 1
        number = self._number
        events = plan_events(
            self._rng,
            self._run_id,
            number,
            min_events=fault.min_events,
            rejected_share=fault.rejected_share,
        )
        payload: dict[str, Any] = {
            "events": [event.document() for event in events],
            "number": number,
            "track_last": fault.track_last,
        }
        if fault.leave_ms is not None:
            payload["leave_ms"] = fault.leave_ms
        else:
            payload["sleep_ms"] = self._rng.randint(0, 20)
        killed = False
        if "kill_after_ms" in fault.extra:
            result, killed = self._invoke_and_kill_in_flush(
                sandbox, payload, number, float(fault.extra["kill_after_ms"]) / 1000
            )
        elif fault.ending is Ending.SIGKILLED:
            result, killed = self._invoke_and_kill(sandbox, payload)
        else:
            result = sandbox.function.invoke(payload)
            killed = fault.ending is Ending.KILLED_AT_DEADLINE and result.status == "timeout"
        if result.status in ("timeout", "crashed"):
            self._leaks.scan_paths([sandbox.spool])  # what the killed process left
        if result.status == "init_error":
            self._ledger.not_tracked(events)  # the handler never ran
        else:
            self._ledger.tracked(events)
        note = "; ".join(part for part in (fault.detail, _note(result, len(events))) if part)
        record = InvocationRecord(
            number=number,
            sandbox=sandbox.name,
            kind=fault.kind,
            ending=fault.ending,
            status=result.status,
            margin=result.margin,
            duration=result.duration,
            cold_start=result.cold_start,
            killed=killed,
            note=note,
        )
        self._ledger.invocation(record)
        if counted and self._progress is not None and number % _PROGRESS_EVERY == 0:
            self._progress(f"  {number}/{self.invocations} invocations")
        self._seen_until = self._reading()
        return Observed(record, self._seen_until.since(before))

    def _invoke_and_kill(
        self, sandbox: Sandbox, payload: dict[str, Any]
    ) -> tuple[InvocationResult, bool]:
        """Invoke; SIGKILL the process as soon as a request of its flush hangs."""
        answers: list[InvocationResult] = []
        failures: list[BaseException] = []

        def invoke() -> None:
            try:
                answers.append(sandbox.function.invoke(payload))
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
        self, sandbox: Sandbox, payload: dict[str, Any], number: int, after: float
    ) -> tuple[InvocationResult, bool]:
        """Invoke; SIGKILL the process ``after`` seconds once its handler said it returns
        (its flush has begun), unless the invocation is over by then."""
        answers: list[InvocationResult] = []
        failures: list[BaseException] = []

        def invoke() -> None:
            try:
                answers.append(sandbox.function.invoke(payload))
            except BaseException as exc:
                failures.append(exc)

        thread = threading.Thread(target=invoke, name="campaign-invoke", daemon=True)
        thread.start()
        killed = False
        with self._returned:
            returning = self._returned.wait_for(
                lambda: number in self._returning or not thread.is_alive(),
                timeout=self.timings.function_timeout + 5,
            )
        if returning and number in self._returning:
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

    def _on_line(self, line: str) -> None:
        marker = line.find(RETURNING_MARKER)
        if marker >= 0:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                number = int(json.loads(line[marker:])["campaign_returning"])
                with self._returned:
                    self._returning.add(number)
                    self._returned.notify_all()
        if UNSENT_MARKER in line:
            with self._lock:
                self._unsent_lines += 1
        if UNDELIVERED_MARKER in line and REFUSED_CONNECTION in line:
            with self._lock:
                self._refused_connections += 1
        index = line.find(REJECTED_MARKER)
        if index < 0:
            return
        try:
            report = json.loads(line[index:])["campaign_rejected"]
            event_ids = [str(event_id) for event_id in report["event_ids"]]
        except (ValueError, KeyError, TypeError):
            return
        with self._lock:
            self._ledger.rejected_reported(event_ids)

    # -- after the invocations -----------------------------------------------------------

    def _replay_twice(self) -> tuple[list[ReplayRun], list[int]]:
        """The recovery the docs give: export the logs as the platform's tools do, and
        ``doow-serverless replay --log`` the export, twice (the second sends nothing new)."""
        exports = self.workdir / "exports"
        exports.mkdir(exist_ok=True)
        paths = []
        for sandbox in self._sandboxes.values():
            path = exports / f"{sandbox.name}{self.platform.export_suffix}"
            lines = sandbox.log_path.read_text(encoding="utf-8").splitlines()
            path.write_text(self.platform.export(lines), encoding="utf-8")
            paths.append(path)
        runs: list[ReplayRun] = []
        stored_by_replay: list[int] = []
        for _ in range(2):
            before = self._endpoint.stored()
            run = replay(endpoint=self._endpoint.url, api_key=self.api_key, spools=[], logs=paths)
            runs.append(run)
            stored_by_replay.append(self._endpoint.stored() - before)
            if not run.available:
                detail = (run.stderr or run.stdout).strip().splitlines()
                self._notes.append(
                    "replay could not run: " + (detail[-1] if detail else f"exit {run.returncode}")
                )
                break
        return runs, stored_by_replay


def _describe(fault: Fault, evidence: Evidence) -> str:
    """A fault that did not take effect, and what was seen instead."""
    records = [item.record for item in evidence.invocations]
    numbers = "-".join(dict.fromkeys(str(record.number) for record in (records[0], records[-1])))
    statuses = ", ".join(record.status for record in records)
    seen = evidence.seen
    answers = ", ".join(f"{name} {count}" for name, count in sorted(seen.answers.items()))
    detail = f"; {fault.detail}" if fault.detail else ""
    return (
        f"invocation {numbers} ({fault.kind.value}, {records[0].sandbox}): {statuses}{detail}; "
        f"collector: {answers or 'no request'}, {evidence.steps_taken} plan step(s) taken"
    )


def _note(result: InvocationResult, tracked: int) -> str:
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
    workdir: Path | None = None,
    keep: bool = False,
    report: Path | None = None,
    timings: Timings | None = None,
    progress: Callable[[str], object] | None = None,
) -> CampaignResult:
    """Run ``platform``'s campaign in ``workdir`` (a fresh temporary directory by default).

    ``workdir`` must be new or empty: the balance counts everything in the store. A
    temporary directory is removed afterwards unless ``keep`` or the campaign failed.
    """
    check_arguments(invocations, seed, workdir, timings)
    command = reproduce_command(invocations, seed, report, platform=platform)
    owned = workdir is None
    root = Path(tempfile.mkdtemp(prefix="doow-campaign-")) if workdir is None else workdir
    root.mkdir(parents=True, exist_ok=True)
    campaign = LambdaCampaign(
        invocations,
        seed,
        root,
        platform=platform,
        timings=timings,
        command=command,
        progress=progress,
    )
    result = campaign.run()
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        text = render(
            result, title=platform.title, intro=platform.intro, epilogue=platform.epilogue
        )
        report.write_text(text, encoding="utf-8")
    if owned and result.ok and not keep:
        shutil.rmtree(root, ignore_errors=True)
    return result


def check_arguments(
    invocations: int, seed: int, workdir: Path | None, timings: Timings | None = None
) -> None:
    """Raise ValueError, saying why, for arguments a campaign cannot run with."""
    schedule(invocations, seed, timings)
    if workdir is not None and workdir.exists() and any(workdir.iterdir()):
        raise ValueError(f"the work directory {workdir} is not empty")


def reproduce_command(
    invocations: int, seed: int, report: Path | None, *, platform: Platform = LAMBDA
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
    if report is not None:
        words += ["--report", str(report)]
    return shlex.join(words)


def summary_lines(result: CampaignResult) -> list[str]:
    balance = result.balance
    margin = "-" if balance.min_margin is None else f"{balance.min_margin * 1000:.0f} ms"
    replayed = str(result.replayed) if result.replays and result.replays[0].available else "n/a"
    effected = sum(balance.effected_by_kind.values())
    scheduled = sum(balance.faults_by_kind.values())
    return [
        f"seed {result.seed}: {balance.invocations} invocations in {result.wall_time:.1f} s",
        f"faults: {effected} of {scheduled} took effect, every kind at least once: "
        f"{'yes' if not balance.never_effected else 'no'}",
        f"tracked {balance.tracked}, stored {balance.stored}, rejected {balance.rejected}, "
        f"duplicates {balance.duplicates}, lost {balance.lost}, replayed {replayed}",
        f"missed deadlines {balance.missed_deadlines}, min margin {margin}, "
        f"key leaks {result.leaks.occurrences}",
        *[f"  lost: {item}" for item in balance.lost_ids],
        *[f"  missed: {item}" for item in balance.missed],
        *[f"  failed: {item}" for item in balance.failed],
        *[f"  no effect: {item}" for item in balance.not_effected],
        *[f"  note: {note}" for note in result.notes],
        "PASSED" if result.ok else "FAILED: " + "; ".join(result.problems),
    ]


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
    parser.add_argument("--seed", type=int, default=1, help="default: 1")
    parser.add_argument("--report", type=Path, help="write the Markdown report here")
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", type=Path, help="write the balance as JSON here")
    args = parser.parse_args(argv)
    try:
        check_arguments(args.count, args.seed, args.workdir)
    except ValueError as exc:
        parser.error(str(exc))
    result = run_campaign(
        args.count,
        args.seed,
        platform=platform,
        workdir=args.workdir,
        keep=args.keep,
        report=args.report,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    for line in summary_lines(result):
        print(line)
    if not result.ok or args.keep or args.workdir:
        print(f"work directory: {result.workdir}")
    if args.json is not None:
        args.json.write_text(json.dumps(_as_json(result), indent=2) + "\n", encoding="utf-8")
    return 0 if result.ok else 1


def _as_json(result: CampaignResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "problems": result.problems,
        "seed": result.seed,
        "invocations": result.scheduled_invocations,
        "wall_time": result.wall_time,
        "balance": asdict(result.balance),
        "replays": [run.summary for run in result.replays],
        "stored_by_replay": result.stored_by_replay,
        "key_leaks": result.leaks.occurrences,
        "collector": result.collector,
    }


def main(argv: Sequence[str] | None = None) -> int:
    return main_for(LAMBDA, argv)


if __name__ == "__main__":
    sys.exit(main())

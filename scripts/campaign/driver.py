"""What every campaign driver holds, and how it ends a run.

A driver (one invocation at a time in :mod:`.lambda_campaign`; bursts over several workers
in :mod:`.managed_campaign`) runs its schedule its own way. Both keep the same things: a
seeded workload, a run id and an API key of their own, the ledger, the collector, the
output watch and the observer; both try again the kinds none of whose faults took effect,
and both end with the same balance, as :meth:`CampaignDriver.conclude`, after one of two
recoveries of what only the logs kept: through the AWS forwarder (:meth:`_forward`, on
Lambda), or the platform's log exports replayed (:meth:`_recover`, Vercel and Azure).
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .accounting import Ledger, balance
from .endpoint import Endpoint
from .evidence import RETRIES
from .faults import Fault, FaultKind, Timings
from .forwarding import ForwarderPath, Forwarding, LogStream
from .leaks import LeakScan
from .observe import Observer
from .output import OutputWatch
from .replay import ReplayRun, replay_twice
from .result import CampaignResult
from .store import read_store
from .workload import DERIVED_SHARE, PlannedEvent, derived_from, new_request_id

# Makes a fault of a kind, tried again after the schedule: (kind, rng, timings).
FaultMaker = Callable[[FaultKind, random.Random, Timings], Fault]


class CampaignDriver:
    def __init__(
        self,
        invocations: int,
        seed: int,
        workdir: Path,
        *,
        kinds: tuple[FaultKind, ...],
        timings: Timings | None = None,
        command: str = "",
        progress: Callable[[str], object] | None = None,
    ) -> None:
        self.invocations = invocations
        self.seed = seed
        self.workdir = workdir
        self.timings = timings or Timings()
        self.command = command
        self._progress = progress
        self._rng = random.Random(f"workload:{seed}")  # noqa: S311 - reproducible
        self._retry_rng = random.Random(f"retries:{seed}")  # noqa: S311 - reproducible
        self._retried_invocations = 0  # of faults tried again, none of their kind in effect
        # Request ids as Lambda's: their own stream, so the workload draws what it drew.
        self._ids = random.Random(f"request-ids:{seed}")  # noqa: S311 - reproducible
        self._resent = 0  # invocations the caller sent again (same request id)
        self._number = 0  # invocations so far
        self._run_id = f"s{seed}-{secrets.token_hex(4)}"
        self.api_key = "dk_campaign_" + secrets.token_hex(16)
        self._ledger = Ledger(kinds=kinds)
        # Also searched as the run goes: spool files come and go.
        self._leaks = LeakScan(self.api_key)
        self._notes: list[str] = []
        self._endpoint = Endpoint(
            workdir / "collector.sqlite3", self.api_key, self.timings.idle_timeout
        )
        self._output = OutputWatch(self._ledger)
        self._observer = Observer(self._endpoint, self._output, self._notes)

    def _tracker_environment(self, reserve_ms: int) -> dict[str, str]:
        """The ``DOOW_TRACK_*`` settings of the campaign functions."""
        return {
            "DOOW_TRACK_API_KEY": self.api_key,
            "DOOW_TRACK_ENDPOINT": self._endpoint.url,
            "DOOW_TRACK_FLUSH_TIMEOUT": str(self.timings.flush_timeout_ms),
            "DOOW_TRACK_FLUSH_RESERVE": str(reserve_ms),
        }

    def _run_fault(self, fault: Fault) -> None:
        raise NotImplementedError

    def _retry_kinds_without_effect(self, make: FaultMaker) -> None:
        """Run a new fault of each kind none of whose faults took effect, until one does."""
        for kind in self._ledger.kinds:
            for _ in range(RETRIES):
                if self._ledger.effected[kind] or not self._ledger.faults[kind]:
                    break
                before = self._number
                self._run_fault(make(kind, self._retry_rng, self.timings))
                self._retried_invocations += self._number - before

    def _identified(self, events: list[PlannedEvent]) -> tuple[str, list[PlannedEvent]]:
        """A request id for an invocation, and its events: half the time tracked without
        keys (as most users do), each id then derived from that request id."""
        request_id = new_request_id(self._ids)
        if self._ids.random() < DERIVED_SHARE:
            events = derived_from(events, request_id)
        return request_id, events

    def _recover(self, exports: list[Path]) -> tuple[list[ReplayRun], list[int]]:
        """The documented recovery: the log exports replayed, twice."""
        return replay_twice(self._endpoint, self.api_key, exports, self._notes)

    def _forward(self, streams: list[LogStream]) -> Forwarding:
        """The recovery production runs on AWS: the logs' subscription payloads delivered
        to the forwarder (the fault plan cleared), its dead-letter queue replayed, every
        payload delivered again."""
        self._endpoint.plan(None)
        path = ForwarderPath(self._endpoint, self.api_key, self.workdir / "forwarder")
        try:
            forwarding = path.recover(streams, random.Random(f"payloads:{self.seed}"))  # noqa: S311
        finally:
            path.close()
        replay = forwarding.dead_letter_replay
        if replay is not None and not replay.available:
            detail = (replay.stderr or replay.stdout).strip().splitlines()
            self._notes.append(
                "the dead-letter queue's replay could not run: "
                + (detail[-1] if detail else f"exit {replay.returncode}")
            )
        return forwarding

    def conclude(
        self,
        *,
        platform: str,
        started: float,
        collector: dict[str, Any],
        replays: list[ReplayRun] | None = None,
        stored_by_replay: list[int] | None = None,
        forwarding: Forwarding | None = None,
        delivery: str = "",
        facts: list[str] | None = None,
    ) -> CampaignResult:
        """The result, once the collector has stopped: the balance from its store, and the
        key searched for everywhere. The
        recovery was ``forwarding``, or the ``replays`` (each with the events it stored)."""
        replays = replays or []
        store = read_store(self.workdir / "collector.sqlite3")
        # Logs, spool, exports, payloads, the dead-letter queue, the forwarder's log, the store.
        self._leaks.scan_paths([self.workdir])
        self._leaks.scan_replays(replays)
        if forwarding is not None:
            self._leaks.scan_text("forwarder output", "\n".join(forwarding.output))
            if forwarding.dead_letter_replay is not None:
                self._leaks.scan_run("dead-letter queue replay", forwarding.dead_letter_replay)
        return CampaignResult(
            platform=platform,
            command=self.command,
            seed=self.seed,
            scheduled_invocations=self.invocations,
            retried_invocations=self._retried_invocations,
            resent_invocations=self._resent,
            timings=self.timings,
            balance=balance(self._ledger, store),
            replays=replays,
            stored_by_replay=stored_by_replay or [],
            forwarding=forwarding,
            leaks=self._leaks,
            collector=collector,
            unsent_log_lines=self._output.unsent_lines,
            wall_time=time.monotonic() - started,
            workdir=str(self.workdir),
            notes=self._notes,
            delivery=delivery,
            facts=facts or [],
        )

"""Everything a finished campaign measured, whatever the platform it drove."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .accounting import Balance
from .faults import Timings
from .forwarding import Forwarding
from .leaks import LeakScan
from .replay import ReplayRun


@dataclass(frozen=True)
class CampaignResult:
    platform: str  # e.g. "AWS Lambda (awslambdaric)"
    command: str  # what reproduces the run
    seed: int
    scheduled_invocations: int
    retried_invocations: int  # of faults tried again, none of their kind having taken effect
    timings: Timings
    balance: Balance
    replays: list[ReplayRun]  # the recovery by log exports replayed (Vercel, Azure)
    stored_by_replay: list[int]  # events newly stored by each replay run
    leaks: LeakScan
    collector: dict[str, Any]  # the collector's counters, summed over its restarts
    unsent_log_lines: int  # "doow_unsent" lines the functions printed
    wall_time: float
    workdir: str
    notes: list[str] = field(default_factory=list)
    delivery: str = ""  # the SDK's delivery mode the run set (DOOW_TRACK_DELIVERY), if any
    facts: list[str] = field(default_factory=list)  # what the report adds to its details
    resent_invocations: int = 0  # sent again by the caller (same request id) after a crash
    forwarding: Forwarding | None = None  # the recovery through the AWS forwarder (Lambda)

    @property
    def recovered(self) -> bool:
        """The recovery ran: the forwarder was invoked, or the first replay answered."""
        if self.forwarding is not None:
            return self.forwarding.first.invocations > 0 or not self.forwarding.payloads
        return bool(self.replays) and self.replays[0].available

    @property
    def replayed(self) -> int:
        """Events the recovery found logged (or persisted) and sent: the forwarder and the
        replay of its dead-letter queue, or the first replay."""
        if self.forwarding is not None:
            return self.forwarding.delivered
        return self.replays[0].count("delivered") if self.replays else 0

    @property
    def problems(self) -> list[str]:
        """Why the campaign failed; empty when it passed."""
        found = []
        balance = self.balance
        for kind in balance.never_effected:
            scheduled = balance.faults_by_kind[kind]
            found.append(f'"{kind}" never took effect ({scheduled} scheduled)')
        if balance.lost:
            found.append(f"{balance.lost} event(s) lost")
        if balance.rejected != balance.rejected_confirmed:
            unconfirmed = balance.rejected - balance.rejected_confirmed
            found.append(f"{unconfirmed} event(s) reported rejected the collector never refused")
        if balance.duplicates:
            found.append(f"{balance.duplicates} duplicate(s)")
        if balance.altered:
            found.append(f"{balance.altered} event(s) stored with another quantity")
        if balance.missed_deadlines:
            found.append(f"{balance.missed_deadlines} deadline(s) missed because of the SDK")
        if balance.failed_invocations:
            found.append(f"{balance.failed_invocations} invocation(s) failed unexpectedly")
        if self.leaks.occurrences:
            found.append(f"the API key appeared {self.leaks.occurrences} time(s)")
        if len(self.stored_by_replay) > 1 and self.stored_by_replay[1]:
            found.append(f"the second replay stored {self.stored_by_replay[1]} new event(s)")
        forwarding = self.forwarding
        if forwarding is not None:
            if forwarding.again.stored:
                found.append(
                    f"delivering every payload again stored {forwarding.again.stored} new event(s)"
                )
            if forwarding.dead_lettered:
                found.append(
                    f"{forwarding.dead_lettered} payload(s) went to the dead-letter queue, "
                    "no fault active"
                )
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

"""What the campaign saw of each fault, and whether that shows the fault took effect.

A scheduled fault is only a plan: the SDK may never meet it (no request was sent, the flush
ended before the kill). So a fault counts as exercised only when its effect was observed:
the collector's own record of how it ended each ingest request (a status it answered, a
hang, a reset), the harness's (a process killed), or the SDK's reports (a refused
connection, ``doow_unsent`` log lines). The campaign reads these before and after each
invocation, and once more when the collector has settled after the fault's last one (an
answer the collector holds back, as "stored after the budget" does, comes after it).

The Managed Instances campaign also counts *sightings*: what it saw of the processes
around its own actions (a worker gone after its SIGKILL, requests in flight at the
collector when the environment got SIGTERM, every process of it ended), named below.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .accounting import InvocationRecord
from .faults import Ending, Fault, FaultKind

# How many times a kind none of whose faults took effect is tried again after the schedule.
RETRIES = 3
SERVER_ERRORS = ("500", "502", "503", "504")
STORED_ANSWERS = ("202", "207")

# Sightings (Managed Instances): each is counted only when the campaign saw it happen.
WORKER_GONE = "a worker SIGKILLed, then gone"
KILLED_SENDING = "a worker SIGKILLed while a request it sent hung"
TERM_IN_FLIGHT = "SIGTERM with requests in flight at the collector"
TERM_MID_HANDLER = "SIGTERM while a handler ran, its events tracked"
ENVIRONMENT_ENDED = "every process of the environment ended"
TMP_LOST = "the next environment started with /tmp empty"


@dataclass(frozen=True)
class Reading:
    """Totals the campaign can read at one moment (over the collector's restarts)."""

    answers: Counter[str]  # ingest requests by how the collector ended them ("hang" too)
    batches: int  # batches the collector processed, storing what it could
    connections: int  # connections the collector accepted
    refused_connections: int  # delivery errors "Connection refused" the functions reported
    unsent_lines: int  # "doow_unsent" lines the functions printed
    sightings: Counter[str] = field(default_factory=Counter)  # see the names above

    def since(self, earlier: Reading) -> Reading:
        return Reading(
            answers=self.answers - earlier.answers,
            batches=self.batches - earlier.batches,
            connections=self.connections - earlier.connections,
            refused_connections=self.refused_connections - earlier.refused_connections,
            unsent_lines=self.unsent_lines - earlier.unsent_lines,
            sightings=self.sightings - earlier.sightings,
        )

    def plus(self, other: Reading) -> Reading:
        return Reading(
            answers=self.answers + other.answers,
            batches=self.batches + other.batches,
            connections=self.connections + other.connections,
            refused_connections=self.refused_connections + other.refused_connections,
            unsent_lines=self.unsent_lines + other.unsent_lines,
            sightings=self.sightings + other.sightings,
        )

    def answered(self, *statuses: str) -> int:
        return sum(self.answers[status] for status in statuses)


NOTHING = Reading(Counter(), 0, 0, 0, 0)


@dataclass(frozen=True)
class Observed:
    """One invocation of a fault, and what was seen while it ran."""

    record: InvocationRecord
    seen: Reading


@dataclass(frozen=True)
class Evidence:
    invocations: list[Observed]
    steps_taken: int  # steps of the fault plan's script that requests took
    late: Reading  # after the last invocation ended, until the collector settled
    reserve: float = 0.25  # the flush reserve of the sandbox the fault ran in, in seconds

    @property
    def seen(self) -> Reading:
        total = self.late
        for invocation in self.invocations:
            total = total.plus(invocation.seen)
        return total


@dataclass(frozen=True)
class Effect:
    shows: str  # what was observed, as the report says it
    test: Callable[[Evidence], bool]


def _every_invocation_answered(evidence: Evidence) -> bool:
    return all(item.record.status == "success" for item in evidence.invocations)


def _came_on_a_new_connection(evidence: Evidence) -> bool:
    """The first invocation sent over a connection, the second had to open a new one."""
    if len(evidence.invocations) != 2:
        return False
    first, second = (item.seen for item in evidence.invocations)
    return (
        sum(first.answers.values()) > 0
        and second.connections > 0
        and second.answered(*STORED_ANSWERS) > 0
    )


def _killed_at_the_deadline_while_hanging(evidence: Evidence) -> bool:
    return any(
        item.record.status == "timeout" and item.seen.answers["hang"] > 0
        for item in evidence.invocations
    )


def _sigkilled_while_hanging(evidence: Evidence) -> bool:
    return any(
        item.record.killed and item.record.status == "crashed" and item.seen.answers["hang"] > 0
        for item in evidence.invocations
    )


def _answered_inside_the_reserve(evidence: Evidence) -> bool:
    return any(
        item.record.status == "success"
        and item.record.margin is not None
        and 0 < item.record.margin < evidence.reserve
        for item in evidence.invocations
    )


def _sigkilled_in_its_flush(evidence: Evidence) -> bool:
    return any(
        item.record.killed and item.record.status == "crashed" for item in evidence.invocations
    )


def _answered_after_its_deadline(evidence: Evidence) -> bool:
    return any(
        item.record.status == "success"
        and item.record.margin is not None
        and item.record.margin < 0
        for item in evidence.invocations
    )


def _shut_down_mid_handler(evidence: Evidence) -> bool:
    seen = evidence.seen.sightings
    return (
        seen[TERM_MID_HANDLER] > 0
        and seen[ENVIRONMENT_ENDED] > 0
        and any(
            item.record.ending is Ending.SHUT_DOWN and item.record.status == "crashed"
            for item in evidence.invocations
        )
    )


def _sighted(*names: str) -> Callable[[Evidence], bool]:
    return lambda evidence: all(evidence.seen.sightings[name] > 0 for name in names)


EFFECTS: Mapping[FaultKind, Effect] = {
    FaultKind.HEALTHY: Effect("every invocation answered", _every_invocation_answered),
    FaultKind.HTTP_5XX: Effect(
        "5xx answered", lambda e: e.steps_taken > 0 and e.seen.answered(*SERVER_ERRORS) > 0
    ),
    FaultKind.HTTP_5XX_AFTER_STORE: Effect(
        "batch stored, then 5xx answered",
        lambda e: e.steps_taken > 0 and e.seen.answered(*SERVER_ERRORS) > 0 and e.seen.batches > 0,
    ),
    FaultKind.RATE_LIMITED_SHORT: Effect("429 answered", lambda e: e.seen.answered("429") > 0),
    FaultKind.RATE_LIMITED_LONG: Effect("429 answered", lambda e: e.seen.answered("429") > 0),
    FaultKind.CONNECTION_REFUSED: Effect(
        "the SDK reported a refused connection", lambda e: e.seen.refused_connections > 0
    ),
    FaultKind.RESET: Effect("connection reset", lambda e: e.seen.answered("reset") > 0),
    FaultKind.RESET_AFTER_STORE: Effect(
        "batch stored, then connection reset",
        lambda e: e.steps_taken > 0 and e.seen.answered("reset") > 0 and e.seen.batches > 0,
    ),
    FaultKind.SLOW: Effect(
        "a slowed request answered", lambda e: e.seen.answered(*STORED_ANSWERS) > 0
    ),
    FaultKind.SLOW_PAST_BUDGET: Effect(
        "batch stored after the invocation ended",
        lambda e: e.steps_taken > 0 and e.late.answered(*STORED_ANSWERS) > 0,
    ),
    FaultKind.HANG: Effect("a request hung", lambda e: e.seen.answered("hang") > 0),
    FaultKind.NEAR_DEADLINE: Effect(
        "a request met the hanging or slow collector",
        lambda e: e.seen.answered("hang", *STORED_ANSWERS) > 0,
    ),
    FaultKind.PARTIAL_207: Effect(
        "207 answered by the plan", lambda e: e.steps_taken > 0 and e.seen.answered("207") > 0
    ),
    FaultKind.UNKNOWN_LICENSE: Effect(
        "207 answered, refusing the license", lambda e: e.seen.answered("207") > 0
    ),
    FaultKind.TOO_LARGE: Effect("413 answered", lambda e: e.seen.answered("413") > 0),
    FaultKind.STALE_KEEPALIVE: Effect(
        "after the pause, a request on a new connection", _came_on_a_new_connection
    ),
    FaultKind.DEADLINE_KILL: Effect(
        "killed at its deadline while a request hung", _killed_at_the_deadline_while_hanging
    ),
    FaultKind.SIGKILL_HANGING: Effect("SIGKILLed while a request hung", _sigkilled_while_hanging),
    FaultKind.HANDLER_OVERRUN: Effect(
        "killed at its deadline",
        lambda e: any(item.record.status == "timeout" for item in e.invocations),
    ),
    # Every batch gets a doow_unsent line before its first request (write-ahead), so lines
    # alone show nothing: the endpoint must have refused them too, the lines left as the
    # only copy (no spool in that sandbox).
    FaultKind.LOG_FALLBACK: Effect(
        "503 answered; doow_unsent lines printed",
        lambda e: e.seen.answered("503") > 0 and e.seen.unsent_lines > 0,
    ),
    FaultKind.TRACKED_INSIDE_RESERVE: Effect(
        "answered in time, with less than the reserve left", _answered_inside_the_reserve
    ),
    FaultKind.KILL_IN_FLUSH: Effect(
        "SIGKILLed after its handler returned, before its flush ended", _sigkilled_in_its_flush
    ),
    FaultKind.KILL_IN_FLUSH_TMP_LOST: Effect(
        "SIGKILLed in its flush, the next process started with /tmp empty",
        _sigkilled_in_its_flush,
    ),
    FaultKind.PAST_DEADLINE: Effect(
        "answered after its deadline, not killed", _answered_after_its_deadline
    ),
    FaultKind.WORKER_KILLED: Effect("a worker SIGKILLed, then gone", _sighted(WORKER_GONE)),
    FaultKind.WORKER_KILLED_SENDING: Effect(
        "SIGKILLed while a request it sent hung", _sighted(WORKER_GONE, KILLED_SENDING)
    ),
    FaultKind.SHUTDOWN_TMP_KEPT: Effect(
        "SIGTERM with requests in flight, every process ended",
        _sighted(TERM_IN_FLIGHT, ENVIRONMENT_ENDED),
    ),
    FaultKind.SHUTDOWN_TMP_LOST: Effect(
        "SIGTERM with requests in flight, every process ended, the next /tmp empty",
        _sighted(TERM_IN_FLIGHT, ENVIRONMENT_ENDED, TMP_LOST),
    ),
    FaultKind.SHUTDOWN_MID_HANDLER: Effect(
        "SIGTERM while a handler ran after tracking; it never answered", _shut_down_mid_handler
    ),
}


def took_effect(kind: FaultKind, evidence: Evidence) -> bool:
    return EFFECTS[kind].test(evidence)


def describe(fault: Fault, evidence: Evidence) -> str:
    """A fault that did not take effect, and what was seen instead."""
    records = [item.record for item in evidence.invocations]
    numbers = "-".join(dict.fromkeys(str(record.number) for record in (records[0], records[-1])))
    statuses = ", ".join(record.status for record in records)
    seen = evidence.seen
    answers = ", ".join(f"{name} {count}" for name, count in sorted(seen.answers.items()))
    sightings = "".join(f"; {name}" for name in sorted(seen.sightings) if seen.sightings[name])
    detail = f"; {fault.detail}" if fault.detail else ""
    return (
        f"invocation {numbers} ({fault.kind.value}, {records[0].sandbox}): {statuses}{detail}; "
        f"collector: {answers or 'no request'}, {evidence.steps_taken} plan step(s) taken"
        f"{sightings}"
    )

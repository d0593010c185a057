"""The kinds of fault a campaign injects, and a seeded schedule of them.

A :class:`Fault` says what goes wrong around one invocation (or a few consecutive ones): a
collector fault plan (see ``doow_serverless_dev.collector._faults``), and what the driver does
to the function or the collector itself (stop the collector, freeze or kill the process).
Timings are given relative to the flush budget, so the same schedule fits any budget.

The schedule is a pure function of ``(invocations, seed, timings)``: the same arguments
give the same faults, in the same order, with the same parameters.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any


class FaultKind(Enum):
    """What goes wrong; the value is the name used in reports."""

    HEALTHY = "healthy"
    HTTP_5XX = "5xx"
    HTTP_5XX_AFTER_STORE = "5xx after store"
    RATE_LIMITED_SHORT = "429, Retry-After < budget"
    RATE_LIMITED_LONG = "429, Retry-After > budget"
    CONNECTION_REFUSED = "connection refused"
    RESET = "reset mid-response"
    RESET_AFTER_STORE = "reset after store"
    SLOW = "slow (< budget)"
    SLOW_PAST_BUDGET = "slow, stored after the budget"
    HANG = "hang"
    NEAR_DEADLINE = "ends near the deadline"
    PARTIAL_207 = "207 partial rejection"
    UNKNOWN_LICENSE = "207 unknown license"
    TOO_LARGE = "413, batch halved"
    STALE_KEEPALIVE = "stale keep-alive"
    DEADLINE_KILL = "killed at the deadline mid-flush"
    SIGKILL_HANGING = "SIGKILL while a request hangs"
    HANDLER_OVERRUN = "the handler runs past its deadline"
    LOG_FALLBACK = "no spool, endpoint down: log lines"
    TRACKED_INSIDE_RESERVE = "usage tracked as it returns, inside the reserve"
    KILL_IN_FLUSH = "SIGKILL at a random moment of the flush"
    KILL_IN_FLUSH_TMP_LOST = "SIGKILL in the flush, restarted with /tmp lost"


class Ending(Enum):
    """How the invocation is meant to end."""

    IN_TIME = "in time"  # answered before its deadline; anything else is the SDK's fault
    KILLED_AT_DEADLINE = "killed at the deadline"  # deliberately runs into its deadline
    SIGKILLED = "SIGKILLed"  # the campaign kills the process mid-flush


# Relative frequencies over a long run. Every kind also appears at least once.
WEIGHTS: Mapping[FaultKind, int] = {
    FaultKind.HEALTHY: 30,
    FaultKind.HTTP_5XX: 6,
    FaultKind.HTTP_5XX_AFTER_STORE: 6,
    FaultKind.RATE_LIMITED_SHORT: 4,
    FaultKind.RATE_LIMITED_LONG: 3,
    FaultKind.CONNECTION_REFUSED: 2,
    FaultKind.RESET: 5,
    FaultKind.RESET_AFTER_STORE: 5,
    FaultKind.SLOW: 4,
    FaultKind.SLOW_PAST_BUDGET: 4,
    FaultKind.HANG: 4,
    FaultKind.NEAR_DEADLINE: 4,
    FaultKind.PARTIAL_207: 5,
    FaultKind.UNKNOWN_LICENSE: 3,
    FaultKind.TOO_LARGE: 4,
    FaultKind.STALE_KEEPALIVE: 2,
    FaultKind.DEADLINE_KILL: 3,
    FaultKind.SIGKILL_HANGING: 3,
    FaultKind.HANDLER_OVERRUN: 3,
    FaultKind.LOG_FALLBACK: 3,
    FaultKind.TRACKED_INSIDE_RESERVE: 4,
    FaultKind.KILL_IN_FLUSH: 4,
    FaultKind.KILL_IN_FLUSH_TMP_LOST: 4,
}

_SERVER_ERRORS = (500, 502, 503, 504)
# The span of a connection-refused fault: the collector stays down this many invocations.
_REFUSED_SPAN = (2, 4)


@dataclass(frozen=True)
class Timings:
    """The time limits a campaign runs under, in seconds."""

    function_timeout: float = 1.5
    flush_timeout: float = 0.5
    flush_reserve: float = 0.25
    idle_timeout: float = 1.0  # the collector closes idle keep-alive connections after this

    @property
    def flush_timeout_ms(self) -> int:
        return round(self.flush_timeout * 1000)

    @property
    def flush_reserve_ms(self) -> int:
        return round(self.flush_reserve * 1000)


@dataclass(frozen=True)
class Fault:
    """What goes wrong around ``span`` consecutive invocations.

    ``plan`` is the collector's fault plan (None: normal processing). ``leave_ms`` makes the
    handler work until that much of its time is left. ``rejected_share`` is the share of
    the invocation's events tracked under a license the collector refuses.
    """

    kind: FaultKind
    plan: Mapping[str, Any] | None = None
    span: int = 1
    leave_ms: int | None = None
    rejected_share: float = 0.0
    ending: Ending = Ending.IN_TIME
    min_events: int = 0  # the fault needs at least this many events to show
    track_last: bool = False  # the handler tracks after its work, as it returns
    detail: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def schedule(invocations: int, seed: int, timings: Timings | None = None) -> list[Fault]:
    """Faults covering ``invocations`` invocations; every kind at least once.

    Raises ValueError when ``invocations`` is too small to hold every kind once.
    """
    timings = timings or Timings()
    rng = random.Random(f"faults:{seed}")  # noqa: S311 - reproducible, not secret
    kinds = list(WEIGHTS)
    if invocations < minimum_invocations():
        raise ValueError(
            f"a campaign needs at least {minimum_invocations()} invocations to cover every "
            f"kind of fault, got {invocations}"
        )
    chosen = list(kinds)
    rng.shuffle(chosen)
    faults = [make_fault(kind, rng, timings) for kind in chosen]
    used = sum(fault.span for fault in faults)
    weights = [WEIGHTS[kind] for kind in kinds]
    while used < invocations:
        room = invocations - used
        fault = make_fault(rng.choices(kinds, weights)[0], rng, timings, room)
        if fault.span > room:
            fault = Fault(FaultKind.HEALTHY)
        faults.insert(rng.randrange(len(faults) + 1), fault)
        used += fault.span
    return _one_reclaimed_after_log_fallback(faults)


def _one_reclaimed_after_log_fallback(faults: list[Fault]) -> list[Fault]:
    """At least one log fallback ends with its environment reclaimed, so that the run
    leaves events only in log lines and the replay has something to find (each one's coin
    flip alone may reclaim none: seed 20251123 at 60 invocations did)."""
    fallbacks = [i for i, fault in enumerate(faults) if fault.kind is FaultKind.LOG_FALLBACK]
    if fallbacks and not any(faults[i].extra.get("reclaim") for i in fallbacks):
        first = faults[fallbacks[0]]
        faults[fallbacks[0]] = replace(
            first, detail=first.detail + ", then reclaimed", extra={**first.extra, "reclaim": True}
        )
    return faults


def minimum_invocations() -> int:
    """Enough for one fault of every kind, each at its longest span."""
    longest = {FaultKind.CONNECTION_REFUSED: _REFUSED_SPAN[1], FaultKind.STALE_KEEPALIVE: 2}
    return sum(longest.get(kind, 1) for kind in WEIGHTS)


def make_fault(
    kind: FaultKind, rng: random.Random, timings: Timings, room: int | None = None
) -> Fault:
    """One fault of ``kind`` with parameters drawn from ``rng``; it spans at most ``room``."""
    budget_ms = timings.flush_timeout_ms
    if kind is FaultKind.HEALTHY:
        return Fault(kind)
    if kind in (FaultKind.HTTP_5XX, FaultKind.HTTP_5XX_AFTER_STORE):
        after_store = kind is FaultKind.HTTP_5XX_AFTER_STORE
        statuses = [rng.choice(_SERVER_ERRORS) for _ in range(rng.randint(1, 3))]
        steps: list[dict[str, Any]] = [
            {"status": status, "after_store": after_store} for status in statuses
        ]
        return Fault(kind, {"script": steps}, min_events=1, detail=_statuses(statuses))
    if kind is FaultKind.RATE_LIMITED_SHORT:
        wait_ms = rng.randint(20, budget_ms // 4)
        steps = [{"status": 429, "retry_after": f"{wait_ms / 1000:.3f}"}]
        return Fault(kind, {"script": steps}, min_events=1, detail=f"Retry-After {wait_ms} ms")
    if kind is FaultKind.RATE_LIMITED_LONG:
        wait_s = math.ceil(timings.flush_timeout) + rng.randint(1, 2)
        steps = [{"status": 429, "retry_after": str(wait_s)}]
        return Fault(
            kind,
            {"script": steps},
            min_events=1,
            detail=f"Retry-After {wait_s} s",
            extra={"retry_after": wait_s},
        )
    if kind is FaultKind.CONNECTION_REFUSED:
        span = rng.randint(*_REFUSED_SPAN)
        if room is not None:
            span = max(1, min(span, room))
        return Fault(kind, span=span, min_events=1, detail=f"down for {span} invocations")
    if kind in (FaultKind.RESET, FaultKind.RESET_AFTER_STORE):
        after_store = kind is FaultKind.RESET_AFTER_STORE
        steps = [{"action": "reset", "after_store": after_store}] * rng.randint(1, 2)
        return Fault(kind, {"script": steps}, min_events=1, detail=f"{len(steps)} reset(s)")
    if kind is FaultKind.SLOW:
        latency_ms = rng.randint(budget_ms // 10, budget_ms * 2 // 5)
        detail = f"{latency_ms} ms per request"
        return Fault(kind, {"latency_ms": latency_ms}, min_events=1, detail=detail)
    if kind is FaultKind.SLOW_PAST_BUDGET:
        delay_ms = budget_ms * 2
        steps = [{"action": "accept", "delay_ms": delay_ms}]
        return Fault(kind, {"script": steps}, min_events=1, detail=f"stored after {delay_ms} ms")
    if kind is FaultKind.HANG:
        return Fault(kind, {"script": [{"action": "hang"}]}, min_events=1)
    if kind is FaultKind.NEAR_DEADLINE:
        # The handler leaves less than the flush timeout, so the budget is the remaining
        # time minus the reserve; the endpoint then hangs or is slow.
        leave_ms = timings.flush_reserve_ms + rng.randint(20, budget_ms // 2)
        if rng.random() < 0.5:
            plan: dict[str, Any] = {"script": [{"action": "hang"}]}
            detail = f"{leave_ms} ms left, endpoint hangs"
        else:
            plan = {"latency_ms": budget_ms // 2}
            detail = f"{leave_ms} ms left, {budget_ms // 2} ms per request"
        return Fault(kind, plan, leave_ms=leave_ms, min_events=1, detail=detail)
    if kind is FaultKind.PARTIAL_207:
        reject = rng.randint(1, 3)
        steps = [{"status": 207, "reject": reject}]
        return Fault(kind, {"script": steps}, min_events=1, detail=f"first {reject} refused")
    if kind is FaultKind.UNKNOWN_LICENSE:
        share = rng.choice((0.25, 0.5, 1.0))
        return Fault(kind, rejected_share=share, min_events=1, detail=f"{share:.0%} refused")
    if kind is FaultKind.TOO_LARGE:
        return Fault(kind, {"script": [{"status": 413}]}, min_events=2)
    if kind is FaultKind.STALE_KEEPALIVE:
        # The first invocation opens a keep-alive connection; the process is then frozen
        # until the collector has closed it, and the second invocation finds it stale.
        pause = timings.idle_timeout + 0.3
        return Fault(
            kind, span=2, min_events=1, detail=f"frozen {pause:.1f} s", extra={"pause": pause}
        )
    if kind is FaultKind.DEADLINE_KILL:
        # Enough for a request to go out first, from a new process too (the kill before
        # ended the last one): it hangs, and the process is killed with it in flight.
        leave_ms = rng.randint(budget_ms * 2 // 5, budget_ms * 4 // 5)
        return Fault(
            kind,
            {"script": [{"action": "hang"}]},
            leave_ms=leave_ms,
            ending=Ending.KILLED_AT_DEADLINE,
            min_events=1,
            detail=f"no reserve, {leave_ms} ms left, endpoint hangs",
        )
    if kind is FaultKind.SIGKILL_HANGING:
        return Fault(kind, {"script": [{"action": "hang"}]}, ending=Ending.SIGKILLED, min_events=1)
    if kind is FaultKind.HANDLER_OVERRUN:
        # The handler never returns: no flush runs, and the platform kills the process at
        # the deadline with the events it tracked in memory.
        return Fault(
            kind,
            leave_ms=-60_000,
            ending=Ending.KILLED_AT_DEADLINE,
            min_events=1,
            detail="the handler never returns",
        )
    if kind is FaultKind.TRACKED_INSIDE_RESERVE:
        # The usage is known at the end of the work, which ends inside the reserve: no time
        # to send, and the deadline watch passed before the events existed. The endpoint is
        # down or slow, so only their log line and spool file keep them.
        leave_ms = rng.randint(60, max(61, timings.flush_reserve_ms - 40))
        down = rng.random() < 0.5
        plan = {"then": {"action": "hang"}} if down else {"latency_ms": budget_ms}
        return Fault(
            kind,
            plan,
            leave_ms=leave_ms,
            track_last=True,
            min_events=1,
            detail=f"{leave_ms} ms left, endpoint {'hangs' if down else 'slow'}",
        )
    if kind in (FaultKind.KILL_IN_FLUSH, FaultKind.KILL_IN_FLUSH_TMP_LOST):
        # A realistic round trip, so the flush takes a while; the process is killed at a
        # random moment after the handler returned (out of memory, a crash in native code,
        # a platform kill): before, during or after its request.
        latency_ms = rng.randint(30, 120)
        kill_after_ms = rng.randint(0, latency_ms + 20)
        lose_tmp = kind is FaultKind.KILL_IN_FLUSH_TMP_LOST
        return Fault(
            kind,
            {"latency_ms": latency_ms},
            ending=Ending.SIGKILLED,
            min_events=1,
            detail=f"{latency_ms} ms round trip, killed {kill_after_ms} ms after returning"
            + (", /tmp lost" if lose_tmp else ""),
            extra={"kill_after_ms": kill_after_ms, "lose_tmp": lose_tmp},
        )
    if kind is FaultKind.LOG_FALLBACK:
        # Run where the spool cannot be used: what is not delivered is printed as
        # "doow_unsent" lines. Half the time the environment is then reclaimed (killed while
        # idle), so those lines are all that is left of the events.
        reclaim = rng.random() < 0.5
        return Fault(
            kind,
            {"then": {"status": 503}},
            min_events=1,
            detail="every request 503" + (", then reclaimed" if reclaim else ""),
            extra={"reclaim": reclaim},
        )
    raise AssertionError(f"unhandled fault kind {kind}")


def _statuses(statuses: list[int]) -> str:
    return ", ".join(str(status) for status in statuses)

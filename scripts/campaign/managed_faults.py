"""The faults of the Managed Instances campaign, and a seeded schedule of them.

Each fault spans one burst: ``span`` invocations sent at once. The endpoint faults are the
classic campaign's collector plans (:func:`.faults.make_fault`), met by the workers'
sender threads after the responses; the others act on the processes: a worker SIGKILLed
at a random moment or while a request it sent hangs, an invocation past its deadline, the
environment shut down (SIGTERM, then SIGKILL after a grace) with requests in flight or
while handlers run, the next one starting with ``/tmp`` kept or lost.

Like :func:`.faults.schedule`, the schedule is a pure function of its arguments.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from typing import Any

from .faults import Ending, Fault, FaultKind, Timings, make_fault

MANAGED_WEIGHTS: Mapping[FaultKind, int] = {
    FaultKind.HEALTHY: 20,
    FaultKind.HTTP_5XX: 5,
    FaultKind.HTTP_5XX_AFTER_STORE: 4,
    FaultKind.RATE_LIMITED_SHORT: 3,
    FaultKind.CONNECTION_REFUSED: 2,
    FaultKind.RESET: 4,
    FaultKind.RESET_AFTER_STORE: 4,
    FaultKind.SLOW: 4,
    FaultKind.HANG: 4,
    FaultKind.PARTIAL_207: 4,
    FaultKind.UNKNOWN_LICENSE: 3,
    FaultKind.TOO_LARGE: 3,
    FaultKind.PAST_DEADLINE: 4,
    FaultKind.WORKER_KILLED: 5,
    FaultKind.WORKER_KILLED_SENDING: 4,
    FaultKind.SHUTDOWN_TMP_KEPT: 2,
    FaultKind.SHUTDOWN_TMP_LOST: 2,
    FaultKind.SHUTDOWN_MID_HANDLER: 2,
}
MANAGED_KINDS = tuple(MANAGED_WEIGHTS)

BURST = (4, 12)  # invocations sent at once
SLEEP_MS = (0, 50)  # what a handler works, after tracking
# A shutdown while handlers run: they work this long, so SIGTERM finds them at it.
MID_HANDLER_SLEEP_MS = (800, 1200)
# What the platform gives the processes between SIGTERM and SIGKILL at a shutdown (its
# runtime gets 300 to 500 ms of a 2 s shutdown; the campaign also gives it all of it).
GRACE_S = (0.3, 2.0)


def managed_schedule(invocations: int, seed: int, timings: Timings | None = None) -> list[Fault]:
    """Bursts covering ``invocations`` invocations; every kind at least once.

    Raises ValueError when ``invocations`` is too small to hold every kind once.
    """
    timings = timings or Timings()
    if invocations < minimum_managed_invocations():
        raise ValueError(
            f"a Managed Instances campaign needs at least {minimum_managed_invocations()} "
            f"invocations to cover every kind of fault, got {invocations}"
        )
    rng = random.Random(f"managed-faults:{seed}")  # noqa: S311 - reproducible, not secret
    chosen = list(MANAGED_KINDS)
    rng.shuffle(chosen)
    faults = [make_managed_fault(kind, rng, timings, BURST[0]) for kind in chosen]
    used = sum(fault.span for fault in faults)
    weights = list(MANAGED_WEIGHTS.values())
    while used < invocations:
        room = invocations - used
        kind = rng.choices(MANAGED_KINDS, weights)[0]
        size = rng.randint(*BURST)
        fault = make_managed_fault(kind if room >= BURST[0] else FaultKind.HEALTHY, rng, timings)
        fault = dataclasses.replace(fault, span=min(size, room))
        faults.insert(rng.randrange(len(faults) + 1), fault)
        used += fault.span
    return faults


def minimum_managed_invocations() -> int:
    return BURST[0] * len(MANAGED_KINDS)


def make_managed_fault(
    kind: FaultKind, rng: random.Random, timings: Timings, span: int | None = None
) -> Fault:
    """One burst's fault of ``kind``, with parameters drawn from ``rng``."""
    span = span if span is not None else rng.randint(*BURST)
    sleep = {"sleep_ms": SLEEP_MS}
    if kind in MANAGED_ENDPOINT_KINDS:
        fault = make_fault(kind, rng, timings)
        detail = "the collector stopped" if kind is FaultKind.CONNECTION_REFUSED else fault.detail
        return dataclasses.replace(fault, span=span, detail=detail, extra={**fault.extra, **sleep})
    if kind is FaultKind.PAST_DEADLINE:
        late_ms = rng.randint(100, 600)
        return Fault(
            kind,
            span=span,
            ending=Ending.PAST_DEADLINE,
            min_events=1,
            detail=f"one handler works {late_ms} ms past its deadline",
            extra={**sleep, "late_ms": late_ms},
        )
    if kind is FaultKind.WORKER_KILLED:
        latency_ms = rng.randint(30, 150)
        kill_after_ms = rng.randint(0, 300)
        return Fault(
            kind,
            {"latency_ms": latency_ms},
            span=span,
            ending=Ending.SIGKILLED,
            min_events=1,
            detail=f"{latency_ms} ms round trip, a worker killed {kill_after_ms} ms in",
            extra={**sleep, "kill_after_ms": kill_after_ms},
        )
    if kind is FaultKind.WORKER_KILLED_SENDING:
        return Fault(
            kind,
            {"then": {"action": "hang"}},
            span=span,
            ending=Ending.SIGKILLED,
            min_events=1,
            detail="every request hangs; a worker that answered is killed",
            extra=sleep,
        )
    if kind in (FaultKind.SHUTDOWN_TMP_KEPT, FaultKind.SHUTDOWN_TMP_LOST):
        return _shutdown(kind, rng, span, sleep)
    if kind is FaultKind.SHUTDOWN_MID_HANDLER:
        grace = round(rng.uniform(*GRACE_S), 2)
        lose_tmp = rng.random() < 0.5
        return Fault(
            kind,
            span=span,
            ending=Ending.SHUT_DOWN,
            min_events=1,
            detail=f"handlers at work, grace {grace:g} s" + (", /tmp lost" if lose_tmp else ""),
            extra={"sleep_ms": MID_HANDLER_SLEEP_MS, "grace": grace, "lose_tmp": lose_tmp},
        )
    raise AssertionError(f"not a Managed Instances fault: {kind}")


def _shutdown(kind: FaultKind, rng: random.Random, span: int, sleep: Mapping[str, Any]) -> Fault:
    grace = round(rng.uniform(*GRACE_S), 2)
    lose_tmp = kind is FaultKind.SHUTDOWN_TMP_LOST
    if rng.random() < 0.5:
        plan: dict[str, Any] = {"then": {"action": "hang"}}
        held = "requests hang"
    else:
        latency_ms = rng.randint(300, 1500)
        plan = {"latency_ms": latency_ms}
        held = f"{latency_ms} ms round trip"
    return Fault(
        kind,
        plan,
        span=span,
        min_events=1,
        detail=f"{held}, grace {grace:g} s" + (", /tmp lost" if lose_tmp else ""),
        extra={**sleep, "grace": grace, "lose_tmp": lose_tmp},
    )


# The collector's faults, as the classic campaign makes them.
MANAGED_ENDPOINT_KINDS = frozenset(
    {
        FaultKind.HEALTHY,
        FaultKind.HTTP_5XX,
        FaultKind.HTTP_5XX_AFTER_STORE,
        FaultKind.RATE_LIMITED_SHORT,
        FaultKind.CONNECTION_REFUSED,
        FaultKind.RESET,
        FaultKind.RESET_AFTER_STORE,
        FaultKind.SLOW,
        FaultKind.HANG,
        FaultKind.PARTIAL_207,
        FaultKind.UNKNOWN_LICENSE,
        FaultKind.TOO_LARGE,
    }
)

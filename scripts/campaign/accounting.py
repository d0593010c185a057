"""The campaign's ledger, and the balance drawn from it and the collector's store.

The ledger holds what the campaign knows independently of the SDK: every event it told
the function to track (with its id and quantity) and how every invocation ended. The
balance compares that with what the collector stored:

- stored: tracked events the collector holds;
- rejected by the server: not stored, and refused for good: by the collector's own record
  of the answers it sent (``rejected_confirmed``: a 207 naming the event, or a 413 to a
  batch of that event alone), or by the SDK's rejection report.
  The two must agree: an event the SDK says was refused, which the collector never
  refused, was not rejected (the run fails on the difference);
- duplicates: stored events the campaign never tracked (an event counted twice under a
  second id) and event rows beyond one per id; the stored quantity is also compared with
  the tracked one, in total and event by event (an altered event);
- lost: tracked, not stored, not rejected. Must be 0.
- missed deadlines: invocations meant to end in time that did not answer before their
  deadline. Must be 0; so must invocations meant to end in time that failed otherwise.
- faults: how many of each kind were scheduled, and how many were seen to take effect
  (``evidence.py``); every kind scheduled must have taken effect at least once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .faults import CLASSIC_KINDS, Ending, FaultKind
from .store import StoreSnapshot
from .workload import PlannedEvent

_SHOWN_IDS = 10


@dataclass(frozen=True)
class InvocationRecord:
    number: int
    sandbox: str
    kind: FaultKind
    ending: Ending
    status: str  # the harness's: success, error, timeout, crashed, init_error
    margin: float | None  # seconds left before the deadline when it ended (see below)
    duration: float | None
    cold_start: bool
    killed: bool = False  # the campaign's SIGKILL was delivered mid-flush
    # The caller had the handler's answer, whatever happened next (after-response: the
    # invocation ends when the extension releases it; a kill may come in between).
    answered: bool = False
    note: str = ""

    @property
    def missed_deadline(self) -> bool:
        """Killed at its deadline, or answered after it."""
        return self.status == "timeout" or (self.margin is not None and self.margin < 0)

    @property
    def failed(self) -> bool:
        """Ended otherwise than with the handler's result (and not by its deadline)."""
        return self.status != "success" and not self.missed_deadline


@dataclass
class Ledger:
    kinds: tuple[FaultKind, ...] = CLASSIC_KINDS  # the kinds of fault the run can schedule
    events: dict[str, PlannedEvent] = field(default_factory=dict)
    untracked: dict[str, PlannedEvent] = field(default_factory=dict)  # the handler never ran
    invocations: list[InvocationRecord] = field(default_factory=list)
    faults: Counter[FaultKind] = field(default_factory=Counter)  # scheduled and run
    effected: Counter[FaultKind] = field(default_factory=Counter)  # seen to take effect
    not_effected: list[str] = field(default_factory=list)  # the others, described
    reported_rejected: set[str] = field(default_factory=set)  # by the SDK, with ids

    def fault(self, kind: FaultKind, *, effected: bool, description: str = "") -> None:
        self.faults[kind] += 1
        if effected:
            self.effected[kind] += 1
        else:
            self.not_effected.append(description or kind.value)

    def tracked(self, events: Iterable[PlannedEvent]) -> None:
        for event in events:
            self.events[event.event_id] = event

    def not_tracked(self, events: Iterable[PlannedEvent]) -> None:
        for event in events:
            self.untracked[event.event_id] = event

    def invocation(self, record: InvocationRecord) -> None:
        self.invocations.append(record)

    def rejected_reported(self, event_ids: Iterable[str]) -> None:
        self.reported_rejected.update(event_ids)


@dataclass(frozen=True)
class Balance:
    tracked: int
    tracked_quantity: float
    stored: int
    stored_quantity: float
    rejected: int
    rejected_confirmed: int  # of those, refused in a 207 the collector sent (its records)
    duplicates: int
    unexpected_ids: int
    extra_rows: int
    excess_quantity: float  # stored beyond the tracked quantity of the events stored
    altered: int  # stored with a quantity other than the one tracked
    lost: int
    lost_ids: list[str]
    resent_batches: int  # event copies the collector received again in stored batches
    invocations: int
    invocations_by_kind: dict[str, int]
    faults_by_kind: dict[str, int]  # scheduled
    effected_by_kind: dict[str, int]  # seen to take effect (see evidence.py)
    not_effected: list[str]  # the first faults that did not
    statuses: dict[str, int]
    missed_deadlines: int
    missed: list[str]
    failed_invocations: int  # meant to end in time, but crashed or answered with an error
    failed: list[str]
    min_margin: float | None
    deliberate_kills: int
    kills_scheduled: int
    killed_after_answer: int  # ended by a kill (SIGKILL, the deadline) after they answered
    cold_starts: int

    @property
    def never_effected(self) -> list[str]:
        """Kinds of fault the run scheduled that never took effect."""
        return [
            kind
            for kind, scheduled in self.faults_by_kind.items()
            if scheduled and not self.effected_by_kind.get(kind)
        ]

    @property
    def ok(self) -> bool:
        return (
            not self.never_effected
            and self.lost == 0
            and self.rejected == self.rejected_confirmed
            and self.duplicates == 0
            and self.altered == 0
            and self.missed_deadlines == 0
            and self.failed_invocations == 0
        )


def balance(ledger: Ledger, store: StoreSnapshot) -> Balance:
    expected = set(ledger.events)
    stored_ids = store.stored_ids
    stored = expected & stored_ids
    unstored = expected - stored_ids
    refused = unstored & store.refused_ids
    rejected = refused | (unstored & ledger.reported_rejected)
    lost = sorted(unstored - rejected, key=lambda i: _order(ledger.events[i]))
    unexpected = stored_ids - expected
    quantity = {i: float(event.quantity) for i, event in ledger.events.items()}
    stored_quantity = sum(store.quantities.values())
    due = sum(quantity[i] for i in stored)
    excess = stored_quantity - due
    altered = [i for i in stored if store.quantities[i] != quantity[i]]
    extra_rows = store.rows - len(stored_ids)
    in_time = [r for r in ledger.invocations if r.ending is Ending.IN_TIME]
    missed = [r for r in in_time if r.missed_deadline]
    failed = [r for r in in_time if r.failed]
    margins = [r.margin for r in in_time if r.margin is not None]
    return Balance(
        tracked=len(expected),
        tracked_quantity=sum(quantity.values()),
        stored=len(stored),
        stored_quantity=stored_quantity,
        rejected=len(rejected),
        rejected_confirmed=len(refused),
        duplicates=len(unexpected) + extra_rows,
        unexpected_ids=len(unexpected),
        extra_rows=extra_rows,
        excess_quantity=excess,
        altered=len(altered),
        lost=len(lost),
        lost_ids=[_describe(ledger.events[i]) for i in lost[:_SHOWN_IDS]],
        resent_batches=sum(count - 1 for count in store.received.values() if count > 1),
        invocations=len(ledger.invocations),
        invocations_by_kind=_by_kind(ledger.kinds, Counter(r.kind for r in ledger.invocations)),
        faults_by_kind=_by_kind(ledger.kinds, ledger.faults),
        effected_by_kind=_by_kind(ledger.kinds, ledger.effected),
        not_effected=ledger.not_effected[:_SHOWN_IDS],
        statuses=dict(sorted(Counter(r.status for r in ledger.invocations).items())),
        missed_deadlines=len(missed),
        missed=[_describe_invocation(r) for r in missed[:_SHOWN_IDS]],
        failed_invocations=len(failed),
        failed=[_describe_invocation(r) for r in failed[:_SHOWN_IDS]],
        min_margin=min(margins) if margins else None,
        deliberate_kills=sum(
            1 for r in ledger.invocations if r.ending is not Ending.IN_TIME and r.killed
        ),
        kills_scheduled=sum(1 for r in ledger.invocations if r.ending is not Ending.IN_TIME),
        killed_after_answer=sum(
            1 for r in ledger.invocations if r.answered and r.status in ("timeout", "crashed")
        ),
        cold_starts=sum(1 for r in ledger.invocations if r.cold_start),
    )


def _by_kind(kinds: tuple[FaultKind, ...], counts: Mapping[FaultKind, int]) -> dict[str, int]:
    return {kind.value: counts.get(kind, 0) for kind in kinds}


def _order(event: PlannedEvent) -> tuple[int, str]:
    return event.invocation, event.key


def _describe(event: PlannedEvent) -> str:
    return f"{event.event_id} (key {event.key}, invocation {event.invocation})"


def _describe_invocation(record: InvocationRecord) -> str:
    margin = "-" if record.margin is None else f"{record.margin * 1000:.0f} ms"
    return (
        f"invocation {record.number} ({record.kind.value}, {record.sandbox}): "
        f"{record.status}, margin {margin}{'; ' + record.note if record.note else ''}"
    )

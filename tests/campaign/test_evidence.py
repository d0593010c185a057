"""A fault took effect only when its effect was seen (no function, no collector)."""

from __future__ import annotations

from collections import Counter

from scripts.campaign.accounting import InvocationRecord
from scripts.campaign.evidence import EFFECTS, NOTHING, Evidence, Observed, Reading, took_effect
from scripts.campaign.faults import Ending, FaultKind


def seen(answers: dict[str, int] | None = None, **totals: int) -> Reading:
    return Reading(
        answers=Counter(answers or {}),
        batches=totals.get("batches", 0),
        connections=totals.get("connections", 0),
        refused_connections=totals.get("refused_connections", 0),
        unsent_lines=totals.get("unsent_lines", 0),
    )


def invocation(
    kind: FaultKind, status: str = "success", reading: Reading = NOTHING, *, killed: bool = False
) -> Observed:
    ending = Ending.SIGKILLED if kind is FaultKind.SIGKILL_HANGING else Ending.IN_TIME
    record = InvocationRecord(1, "main", kind, ending, status, None, 0.1, False, killed=killed)
    return Observed(record, reading)


def test_every_kind_of_fault_says_what_shows_its_effect() -> None:
    assert set(EFFECTS) == set(FaultKind)


def test_a_scheduled_fault_nothing_reached_did_not_take_effect() -> None:
    for kind in FaultKind:
        if kind is not FaultKind.HEALTHY:
            status = "timeout" if kind is FaultKind.HANDLER_OVERRUN else "success"
            quiet = Evidence([invocation(kind, status)], steps_taken=0, late=NOTHING)
            assert took_effect(kind, quiet) is (kind is FaultKind.HANDLER_OVERRUN), kind


def test_a_kill_counts_only_when_the_process_died_while_its_request_hung() -> None:
    kind = FaultKind.SIGKILL_HANGING
    hung = seen({"hang": 1})
    survived = Evidence([invocation(kind, "success", hung, killed=True)], 1, NOTHING)
    nothing_in_flight = Evidence([invocation(kind, "crashed", killed=True)], 0, NOTHING)
    killed = Evidence([invocation(kind, "crashed", hung, killed=True)], 1, NOTHING)
    assert (took_effect(kind, survived), took_effect(kind, nothing_in_flight)) == (False, False)
    assert took_effect(kind, killed)


def test_stored_after_the_budget_means_answered_after_the_invocation_ended() -> None:
    kind = FaultKind.SLOW_PAST_BUDGET
    in_time = Evidence([invocation(kind, reading=seen({"202": 1}, batches=1))], 1, NOTHING)
    late = Evidence([invocation(kind)], 1, seen({"202": 1}, batches=1))
    assert (took_effect(kind, in_time), took_effect(kind, late)) == (False, True)


def test_a_stale_connection_shows_as_a_new_one_for_the_second_invocation() -> None:
    kind = FaultKind.STALE_KEEPALIVE
    first = invocation(kind, reading=seen({"202": 1}, connections=1))
    reused = invocation(kind, reading=seen({"202": 1}))
    reopened = invocation(kind, reading=seen({"202": 1}, connections=1))
    assert not took_effect(kind, Evidence([first, reused], 0, NOTHING))
    assert took_effect(kind, Evidence([first, reopened], 0, NOTHING))


def test_the_log_fallback_needs_the_endpoint_down_not_only_write_ahead_lines() -> None:
    kind = FaultKind.LOG_FALLBACK
    written_ahead = Evidence(
        [invocation(kind, reading=seen({"202": 1}, unsent_lines=1))], 0, NOTHING
    )
    refused = Evidence([invocation(kind, reading=seen({"503": 3}, unsent_lines=1))], 0, NOTHING)
    assert (took_effect(kind, written_ahead), took_effect(kind, refused)) == (False, True)

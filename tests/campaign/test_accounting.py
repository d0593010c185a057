"""The campaign's balance catches what it is there to catch (no function, no collector)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from scripts.campaign.accounting import InvocationRecord, Ledger, balance
from scripts.campaign.faults import Ending, FaultKind
from scripts.campaign.store import StoreSnapshot
from scripts.campaign.workload import REJECTED_LICENSE, event_id_for_key, plan_events


def _ledger(count: int = 6) -> Ledger:
    ledger = Ledger()
    rng = random.Random(0)
    ledger.tracked(plan_events(rng, "run", 1, min_events=count)[:count])
    return ledger


def _store(ledger: Ledger, ids: list[str], refused: Sequence[str] = ()) -> StoreSnapshot:
    """The collector's store holding ``ids``, having answered 207s refusing ``refused``."""
    quantities = {i: float(ledger.events[i].quantity) for i in ids if i in ledger.events}
    quantities.update({i: 1.0 for i in ids if i not in ledger.events})
    return StoreSnapshot(
        quantities=quantities, rows=len(quantities), received=Counter(ids), refused=Counter(refused)
    )


def test_every_event_stored_balances() -> None:
    ledger = _ledger()
    result = balance(ledger, _store(ledger, list(ledger.events)))
    assert (result.stored, result.rejected, result.lost, result.duplicates) == (6, 0, 0, 0)
    assert result.ok


def test_an_event_neither_stored_nor_refused_is_lost() -> None:
    ledger = _ledger()
    ids = list(ledger.events)
    result = balance(ledger, _store(ledger, ids[1:]))
    assert result.lost == 1
    assert ids[0] in result.lost_ids[0]
    assert not result.ok


def test_events_the_collector_refused_are_rejected_not_lost() -> None:
    ledger = _ledger()
    ids = list(ledger.events)
    ledger.rejected_reported([ids[1]])  # the SDK reported it too
    result = balance(ledger, _store(ledger, ids[2:], refused=ids[:2]))
    assert (result.rejected, result.rejected_confirmed, result.lost) == (2, 2, 0)
    assert result.ok


def test_a_rejection_only_the_sdk_reports_is_not_confirmed() -> None:
    ledger = _ledger()
    ids = list(ledger.events)
    ledger.rejected_reported([ids[0]])
    result = balance(ledger, _store(ledger, ids[1:]))
    assert (result.rejected, result.rejected_confirmed, result.lost) == (1, 0, 0)
    assert not result.ok


def test_events_under_the_refused_license_are_lost_unless_the_collector_refused_them() -> None:
    ledger = Ledger()
    ledger.tracked(plan_events(random.Random(1), "run", 1, min_events=4, rejected_share=1.0))
    assert len(ledger.events) == 28
    assert all(event.license_id == REJECTED_LICENSE for event in ledger.events.values())
    empty = balance(ledger, _store(ledger, []))
    assert (empty.lost, empty.rejected) == (empty.tracked, 0)
    assert not empty.ok

    refused = balance(ledger, _store(ledger, [], refused=list(ledger.events)))
    assert (refused.lost, refused.rejected, refused.rejected_confirmed) == (0, 28, 28)
    assert refused.ok


def test_an_event_stored_under_a_second_id_is_a_duplicate() -> None:
    ledger = _ledger()
    result = balance(ledger, _store(ledger, [*ledger.events, event_id_for_key("elsewhere")]))
    assert (result.duplicates, result.unexpected_ids) == (1, 1)
    assert result.excess_quantity == 1.0


def test_an_event_stored_with_another_quantity_is_caught() -> None:
    ledger = _ledger()
    store = _store(ledger, list(ledger.events))
    first = next(iter(ledger.events))
    store.quantities[first] += 1
    assert balance(ledger, store).altered == 1


def test_only_invocations_meant_to_end_in_time_count_as_missed() -> None:
    ledger = _ledger()
    for number, (ending, status, margin) in enumerate(
        [
            (Ending.IN_TIME, "success", 0.2),
            (Ending.IN_TIME, "timeout", None),
            (Ending.IN_TIME, "success", -0.001),
            (Ending.IN_TIME, "crashed", None),
            (Ending.KILLED_AT_DEADLINE, "timeout", None),
            (Ending.SIGKILLED, "crashed", None),
        ]
    ):
        ledger.invocation(
            InvocationRecord(number, "main", FaultKind.HANG, ending, status, margin, 0.1, False)
        )
    result = balance(ledger, _store(ledger, list(ledger.events)))
    assert (result.missed_deadlines, result.failed_invocations) == (2, 1)
    assert result.min_margin == -0.001

"""The usage events each invocation tracks, chosen by the campaign so it knows them all.

Every event has an ``idempotency_key`` the campaign picks, so its event id (the UUID the
server stores) is known before the function runs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from doow_serverless._core.wire import IDEMPOTENCY_SEED_PREFIX, event_id_from_seed

LICENSE = "lic_campaign"
# The collector is started with this license refused: events under it get a 207 rejection.
REJECTED_LICENSE = "lic_campaign_unknown"
MAX_EVENTS = 30
MAX_QUANTITY = 1000


@dataclass(frozen=True)
class PlannedEvent:
    key: str
    event_id: str
    quantity: int
    license_id: str
    invocation: int

    def document(self) -> dict[str, object]:
        """What the function is told to track."""
        return {"key": self.key, "quantity": self.quantity, "license_id": self.license_id}


def event_id_for_key(idempotency_key: str) -> str:
    """The event id the SDK settles on for ``idempotency_key`` (the same in any process)."""
    return event_id_from_seed(IDEMPOTENCY_SEED_PREFIX + idempotency_key)


def plan_events(
    rng: random.Random,
    run_id: str,
    invocation: int,
    *,
    min_events: int = 0,
    rejected_share: float = 0.0,
) -> list[PlannedEvent]:
    """1 to 30 events (sometimes none), at least ``min_events``; a share refused by license."""
    count = 0 if rng.random() < 0.05 else rng.randint(1, MAX_EVENTS)
    count = max(count, min_events)
    rejected = round(count * rejected_share)
    if rejected_share > 0:
        rejected = max(rejected, 1)
    refused_positions = set(rng.sample(range(count), rejected))
    events = []
    for position in range(count):
        key = f"{run_id}:{invocation}:{position}"
        events.append(
            PlannedEvent(
                key=key,
                event_id=event_id_for_key(key),
                quantity=rng.randint(1, MAX_QUANTITY),
                license_id=REJECTED_LICENSE if position in refused_positions else LICENSE,
                invocation=invocation,
            )
        )
    return events

"""The usage events each invocation tracks, chosen by the campaign so it knows them all.

Every event has an ``idempotency_key`` the campaign picks, so its event id (the UUID the
server stores) is known before the function runs; or, tracked without one (the default a
user meets), an id the SDK derives from the invocation's request id and the event's place in
it, which the campaign knows too as it picks the request id.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from dataclasses import dataclass

from doow_serverless._core.wire import IDEMPOTENCY_SEED_PREFIX, event_id_from_seed

LICENSE = "lic_campaign"
# The collector is started with this license refused: events under it get a 207 rejection.
REJECTED_LICENSE = "lic_campaign_unknown"
MAX_EVENTS = 30
# On Lambda, the share of invocations whose events carry no key (ids from the request id).
DERIVED_SHARE = 0.5
MAX_QUANTITY = 1000


@dataclass(frozen=True)
class PlannedEvent:
    key: str
    event_id: str
    quantity: int
    license_id: str
    invocation: int
    derived: bool = False  # tracked without the key: the id comes from the request id

    def document(self) -> dict[str, object]:
        """What the function is told to track."""
        document: dict[str, object] = {"quantity": self.quantity, "license_id": self.license_id}
        if not self.derived:
            document["key"] = self.key
        return document


def event_id_for_key(idempotency_key: str) -> str:
    """The event id the SDK settles on for ``idempotency_key`` (the same in any process)."""
    return event_id_from_seed(IDEMPOTENCY_SEED_PREFIX + idempotency_key)


def new_request_id(rng: random.Random) -> str:
    """A request id as Lambda's (a random UUID), drawn from ``rng`` to be reproducible."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def derived_from(events: list[PlannedEvent], request_id: str) -> list[PlannedEvent]:
    """The same events tracked without keys in an invocation whose request id is
    ``request_id``: each id derived from it and the event's place, as the SDK derives it."""
    return [
        dataclasses.replace(
            event, event_id=event_id_from_seed(f"{request_id}:{place}"), derived=True
        )
        for place, event in enumerate(events)
    ]


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

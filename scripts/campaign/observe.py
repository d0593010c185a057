"""Reading what a campaign can see at a moment, and ending a fault to judge its effect.

Both drivers (one invocation at a time, and Managed Instances' concurrent ones) read the
collector's counters and their functions' output the same way, and end every fault the
same way: the collector's fault plan is cleared (releasing held requests), the collector
is given time to finish what it handles, and the output time to arrive, until the fault's
effect shows or that time is up.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from .endpoint import Endpoint
from .evidence import NOTHING, Evidence, Observed, Reading, took_effect
from .faults import FaultKind
from .output import OutputWatch

# After a fault: how long the collector may take to end the requests it is still handling,
# and the functions' output to arrive (a line printed during the flush can come just after).
SETTLE_S = 10.0
OUTPUT_GRACE_S = 0.5


class Observer:
    """Readings over the collector's restarts and the output, and what the driver sighted."""

    def __init__(self, endpoint: Endpoint, output: OutputWatch, notes: list[str]) -> None:
        self._endpoint = endpoint
        self._output = output
        self._notes = notes
        self._lock = threading.Lock()
        self._sightings: Counter[str] = Counter()
        self.seen_until = NOTHING  # what was seen by the end of the last invocation

    def sight(self, name: str) -> None:
        """The driver saw ``name`` happen (see the sightings in ``evidence``)."""
        with self._lock:
            self._sightings[name] += 1

    def reading(self) -> Reading:
        counters = self._endpoint.counters()
        refused, unsent = self._output.counts()
        with self._lock:
            sightings = Counter(self._sightings)
        return Reading(
            answers=Counter(counters["requests_by_status"]),
            batches=int(counters.get("batches", 0)),
            connections=int(counters.get("connections", 0)),
            refused_connections=refused,
            unsent_lines=unsent,
            sightings=sightings,
        )

    def settle(
        self,
        kind: FaultKind,
        invocations: list[Observed],
        steps_taken: int,
        *,
        reserve: float,
        where: str,
    ) -> Evidence:
        """End the fault: release held requests, let the collector finish the others; what
        was seen since the last invocation's end, the late answers and output included."""
        self._endpoint.plan(None)
        give_up = time.monotonic() + SETTLE_S
        while self._endpoint.in_progress() and time.monotonic() < give_up:
            time.sleep(0.01)
        if self._endpoint.in_progress():
            self._notes.append(f"{where}: the collector did not settle")
        output_by = time.monotonic() + OUTPUT_GRACE_S
        while True:
            evidence = Evidence(
                invocations, steps_taken, self.reading().since(self.seen_until), reserve=reserve
            )
            if took_effect(kind, evidence) or time.monotonic() >= output_by:
                return evidence
            time.sleep(0.02)

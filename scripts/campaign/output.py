"""What the campaign reads in its functions' output, line by line, as it comes.

The campaign functions print a few JSON lines of their own (see ``function/app.py``): the
ids of events the server refused for good, other delivery errors the SDK reported, the
moment the handler tracked its events and the moment it returns (with its process id).
The SDK prints its ``doow_unsent`` lines. :class:`OutputWatch` counts and records them for
the ledger and the evidence, and lets the driver wait for a marker.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .accounting import Ledger

# The line a campaign function prints for events the server refused for good.
REJECTED_MARKER = '{"campaign_rejected"'
# The SDK's lines of kept events (written ahead of a request, or for what is undelivered).
UNSENT_MARKER = '{"doow_unsent"'
# The line a campaign function prints for any other delivery error the SDK reports.
UNDELIVERED_MARKER = '{"campaign_undelivered"'
# The line a campaign function prints once it has tracked its events.
TRACKED_MARKER = '{"campaign_tracked"'
# The line a campaign function prints just before its handler returns (its flush begins).
RETURNING_MARKER = '{"campaign_returning"'
REFUSED_CONNECTION = "Connection refused"


class OutputWatch:
    """Counts and markers from every line the functions print (thread-safe)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._changed = threading.Condition()
        self.unsent_lines = 0  # "doow_unsent" lines printed
        self.refused_connections = 0  # delivery errors "Connection refused" reported
        self._returning: set[int] = set()  # invocations whose handler said it returns
        self._tracked: dict[int, int] = {}  # invocation number -> pid of its process

    def on_line(self, line: str) -> None:
        returning = _marked(line, RETURNING_MARKER)
        tracked = _marked(line, TRACKED_MARKER)
        rejected = _marked(line, REJECTED_MARKER)
        with self._changed:
            if UNSENT_MARKER in line:
                self.unsent_lines += 1
            if UNDELIVERED_MARKER in line and REFUSED_CONNECTION in line:
                self.refused_connections += 1
            if returning is not None:
                number = _number(returning)
                if number is not None:
                    self._returning.add(number)
            if tracked is not None:
                number, pid = _number(tracked), tracked.get("pid")
                if number is not None and isinstance(pid, int):
                    self._tracked[number] = pid
            if rejected is not None:
                self._ledger.rejected_reported(_rejected_ids(rejected))
            if returning is not None or tracked is not None:
                self._changed.notify_all()

    def counts(self) -> tuple[int, int]:
        """``(refused connections, unsent lines)`` so far."""
        with self._changed:
            return self.refused_connections, self.unsent_lines

    def wait_returning(self, number: int, running: Callable[[], bool], timeout: float) -> bool:
        """Wait until invocation ``number`` said it returns; False if it ended first, or
        ``timeout`` passed."""
        with self._changed:
            self._changed.wait_for(
                lambda: number in self._returning or not running(), timeout=timeout
            )
            return number in self._returning

    def wait_tracked(self, numbers: Iterable[int], timeout: float) -> dict[int, int]:
        """Wait until every invocation of ``numbers`` tracked its events, at most
        ``timeout``; those that did, with the pid of the process that ran them."""
        wanted = set(numbers)
        with self._changed:
            self._changed.wait_for(lambda: wanted <= set(self._tracked), timeout=timeout)
            return {number: pid for number, pid in self._tracked.items() if number in wanted}


def _marked(line: str, marker: str) -> dict[str, Any] | None:
    """The JSON object starting at ``marker`` in ``line``, if there is one."""
    index = line.find(marker)
    if index < 0:
        return None
    try:
        document = json.loads(line[index:])
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _number(document: dict[str, Any]) -> int | None:
    value = next(iter(document.values()), None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _rejected_ids(document: dict[str, Any]) -> list[str]:
    report = document.get("campaign_rejected")
    event_ids = report.get("event_ids") if isinstance(report, dict) else None
    return [str(event_id) for event_id in event_ids] if isinstance(event_ids, list) else []

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
        self._tracked: set[int] = set()  # invocations whose handler tracked its events

    def on_line(self, line: str) -> None:
        """Read one line; it may hold several documents (threads of one process print
        into one stream: a line and its newline are two writes)."""
        returning = _numbers(_marked(line, RETURNING_MARKER))
        tracked = _numbers(_marked(line, TRACKED_MARKER))
        rejected = [i for found in _marked(line, REJECTED_MARKER) for i in _rejected_ids(found)]
        with self._changed:
            self.unsent_lines += line.count(UNSENT_MARKER)
            if UNDELIVERED_MARKER in line and REFUSED_CONNECTION in line:
                self.refused_connections += 1
            self._returning.update(returning)
            self._tracked.update(tracked)
            if rejected:
                self._ledger.rejected_reported(rejected)
            if returning or tracked:
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

    def wait_tracked(self, numbers: Iterable[int], at_least: int, timeout: float) -> set[int]:
        """Wait until ``at_least`` of the invocations ``numbers`` tracked their events, at
        most ``timeout``; those that did."""
        wanted = set(numbers)
        with self._changed:
            self._changed.wait_for(lambda: len(wanted & self._tracked) >= at_least, timeout=timeout)
            return wanted & self._tracked


_DECODER = json.JSONDecoder()


def _marked(line: str, marker: str) -> list[dict[str, Any]]:
    """Every JSON object starting with ``marker`` in ``line``."""
    found = []
    index = line.find(marker)
    while index >= 0:
        try:
            document, end = _DECODER.raw_decode(line, index)
        except ValueError:
            end = index + len(marker)
        else:
            if isinstance(document, dict):
                found.append(document)
        index = line.find(marker, end)
    return found


def _numbers(documents: list[dict[str, Any]]) -> list[int]:
    """The invocation numbers the documents give (their first value)."""
    values = (next(iter(document.values()), None) for document in documents)
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def _rejected_ids(document: dict[str, Any]) -> list[str]:
    report = document.get("campaign_rejected")
    event_ids = report.get("event_ids") if isinstance(report, dict) else None
    return [str(event_id) for event_id in event_ids] if isinstance(event_ids, list) else []

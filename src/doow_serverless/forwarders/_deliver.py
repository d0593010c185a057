"""What every forwarder does with one delivery of a log pipeline.

Read the SDK's lines in it (``read_log``: write-ahead lines, lines of what a flush could
not deliver, acknowledgements), and send the events not answered for with their own ids,
through ``replay`` and so through the library's one delivery engine, within the time the
platform gives the forwarder. The outcome says whether every event was answered for
(delivered, or refused for good by Doow and reported); when not, the platform wrapper fails
the invocation, so the platform's own retries cover it.

A write-ahead line whose acknowledgement is not in the same delivery (the log pipeline cut
the batch between them, or the function was killed mid-request) is sent again: its events
keep their ids, so Doow counts an event it already has as a duplicate, never twice.

Nothing here writes the SDK's markers: a forwarder's own log may be routed back to it
(a Vercel drain or an Azure diagnostic setting covers every function of the project or
app) without feeding itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from .._client.replay import ReplayError, ReplaySummary, replay, replay_config
from .._core.config import TrackerConfig
from .._core.constants import LOGGER_NAME
from .._delivery.transport import HttpTransport

logger = logging.getLogger(LOGGER_NAME)

# Kept back from the platform's deadline: the answer (or the error) must get out before it.
RESERVE_S = 0.5


class ForwardingIncomplete(Exception):
    """Events of a delivery are still not delivered: raised so the platform retries it."""


class Outcome(NamedTuple):
    """What a delivery held and what became of it."""

    summary: ReplaySummary

    @property
    def complete(self) -> bool:
        """Every event read was answered for: nothing is left for a retry to send."""
        return self.summary.unsent == 0

    def as_dict(self) -> dict[str, int]:
        return self.summary.as_dict()

    def describe(self) -> str:
        s = self.summary
        return (
            f"{s.found} event(s) read ({s.answered} of lines answered for already), "
            f"{s.unique} distinct: {s.delivered} delivered, {s.rejected} refused by Doow, "
            f"{s.unsent} not delivered; {s.invalid} unreadable"
        )


class Forwarder:
    """Sends the events of deliveries; one per process, safe to share between threads.

    Its settings come from the environment (``DOOW_TRACK_API_KEY``, ``DOOW_TRACK_ENDPOINT``
    and the other connection variables, as ``doow-serverless replay``), read on first use,
    and its connection is kept between deliveries (warm invocations).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ
        self._config: TrackerConfig | None = None
        self._transport = HttpTransport(environ=environ)
        self._lock = threading.Lock()

    def config(self) -> TrackerConfig:
        """The settings to send with; ForwardingIncomplete when nothing could be sent."""
        with self._lock:
            if self._config is None:
                try:
                    self._config = replay_config({}, self._environ)
                except ReplayError as exc:
                    raise ForwardingIncomplete(f"doow-serverless forwarder: {exc}") from None
            return self._config

    def forward(self, source: str, lines: Iterable[str], time_left: float) -> Outcome:
        """Send what ``lines`` hold within ``time_left`` seconds (less the reserve)."""
        config = self.config()
        summary = replay(
            config,
            logs=[(source, lines)],
            timeout=max(0.0, time_left - RESERVE_S),
            transport=self._transport,
        )
        outcome = Outcome(summary)
        if not outcome.complete:
            level = logging.ERROR
        elif summary.rejected or summary.invalid:
            level = logging.WARNING
        else:
            level = logging.INFO
        logger.log(level, "doow-serverless forwarder: %s: %s", source, outcome.describe())
        return outcome


def incomplete(outcome: Outcome, retried_by: str) -> ForwardingIncomplete:
    """The error that fails an invocation whose delivery was not all delivered."""
    return ForwardingIncomplete(
        f"doow-serverless forwarder: {outcome.summary.unsent} event(s) not delivered "
        f"({outcome.describe()}); failing so that {retried_by}"
    )

"""After-response delivery on Lambda: the flush in an internal extension's turn.

Registered while the function initialises, one thread of this process is an internal
extension (see ``_extension``). For each invocation, the handler's wrapper keeps the
events (their log lines and spool files: nothing between the response and the flush can
lose them), hands the invocation over here, and returns the handler's result at once: the
runtime posts it, and the caller has its response. This thread, which Lambda sent the same
invocation, then flushes it with the budget the synchronous mode would have had
(``min(flush_timeout, remaining - reserve)``), and only then asks for its next event:
Lambda freezes the environment after that, never during the flush. Events of invocation N
are flushed before the extension releases invocation N.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping

from .._core.constants import LOGGER_NAME
from .._invocation.engine import Invocation
from ._extension import ExtensionClient, ExtensionError

logger = logging.getLogger(LOGGER_NAME)

EXTENSION_NAME = "doow-serverless"
# How long a failing event/next is retried before the next try (the runtime would wait
# for this extension forever otherwise: Lambda ends an invocation only when it asks).
RETRY_S = 0.5


class AfterResponse:
    """The extension thread, and the invocations the handler's wrapper handed over."""

    def __init__(self, client: ExtensionClient) -> None:
        self._client = client
        self._handed: dict[str, Invocation] = {}
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="doow-after-response", daemon=True)

    @classmethod
    def register(cls, environ: Mapping[str, str] | None = None) -> AfterResponse | None:
        """Register the extension and start its thread (during init); None, said once at
        WARNING, where it cannot be (no Extensions API, too late, Managed Instances)."""
        try:
            client = ExtensionClient.from_environment(
                os.environ if environ is None else environ, EXTENSION_NAME
            )
            client.register(["INVOKE"])
        except ExtensionError as exc:
            logger.warning(
                "doow-serverless: delivery after the response is not available (%s); "
                "flushing before each response instead",
                exc,
            )
            return None
        delivery = cls(client)
        delivery._thread.start()
        return delivery

    def hand_over(self, request_id: str, invocation: Invocation) -> None:
        """The handler returned: this invocation is flushed in the extension's turn."""
        invocation.keep()
        with self._changed:
            self._handed[request_id] = invocation
            self._changed.notify_all()

    def _run(self) -> None:
        while True:
            try:
                event = self._client.next_event()
            except ExtensionError as exc:
                logger.warning("doow-serverless: the extension lost Lambda (%s); retrying", exc)
                time.sleep(RETRY_S)
                continue
            if event.get("eventType") != "INVOKE":
                continue
            invocation = self._handed_invocation(event)
            if invocation is not None:
                invocation.finish()

    def _handed_invocation(self, event: Mapping[str, object]) -> Invocation | None:
        """Wait for the handler of the event's invocation to hand it over, at most until
        its deadline (past it, Lambda ends the environment whatever this thread does)."""
        request_id = event.get("requestId")
        deadline_ms = event.get("deadlineMs")
        until = (
            float(deadline_ms) / 1000
            if isinstance(deadline_ms, (int, float))
            else time.time() + 900.0
        )
        with self._changed:
            self._changed.wait_for(
                lambda: request_id in self._handed, timeout=max(until - time.time(), 0.0)
            )
            invocation = self._handed.pop(str(request_id), None)
            # A handover no event will come for (another request id) is flushed as well.
            stale = list(self._handed.values())
            self._handed.clear()
        for other in stale:
            other.finish()
        return invocation

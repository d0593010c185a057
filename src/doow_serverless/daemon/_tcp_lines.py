"""NDJSON lines over TCP (127.0.0.1 only), acknowledged once durable.

For scripts that can only write lines: ``nc 127.0.0.1 8789 < events.ndjson``. The daemon
answers with lines of its own: ``{"line": N, "error": "..."}`` for a line it refuses, and
``{"acked": N}`` once every line up to the N-th of this connection is answered for (its
event written to the spool, or refused above). A client that waits for the ``acked`` of
its last line (or half-closes and reads to the end) knows nothing it sent can be lost;
lines not yet acknowledged when a connection breaks may be sent again, and are counted
once only when they carry an ``event_id`` or ``idempotency_key``.

When the spool is full the daemon stops reading from the connection until there is room:
the client's writes block, as on a pipe.
"""

from __future__ import annotations

import json
import socket
import socketserver
import time
from collections.abc import Callable
from typing import Any

from .._core.events import Attribution
from ._intake import Intake, Refused
from ._lines import line_document
from ._server import IDLE_TIMEOUT_S

_CHUNK_BYTES = 65_536


class LineInput:
    """What the handler needs, as ``server.lines``."""

    def __init__(self, intake: Intake, attribution: Callable[[], Attribution | None]) -> None:
        self.intake = intake
        self.attribution = attribution


class LinesHandler(socketserver.BaseRequestHandler):
    server: Any  # a ServerMixin server with a ``lines`` attribute

    def handle(self) -> None:
        connection: socket.socket = self.request
        connection.settimeout(IDLE_TIMEOUT_S)
        connections = self.server.connections
        pending = b""
        number = 0
        while True:
            try:
                chunk = connection.recv(_CHUNK_BYTES)
            except OSError:  # reset, or idle too long
                return
            if not chunk:
                if connections.stopping or not pending.strip():
                    return  # a stop ended the connection: a partial line is not a line
                lines, pending = [pending], b""
            else:
                connections.busy(connection, True)
                *lines, pending = (pending + chunk).split(b"\n")
            answers = self._take(lines, number)
            if answers is None:
                return
            number += len(lines)
            answers.append(_encode({"acked": number}))
            try:
                connection.sendall(b"".join(answers))
            except OSError:
                return
            connections.busy(connection, False)
            if not chunk:
                return

    def _take(self, lines: list[bytes], before: int) -> list[bytes] | None:
        """The answers for ``lines`` (numbered after ``before``) once their events are
        durable; None when the connection must end unanswered (a stop while full)."""
        lines_input: LineInput = self.server.lines
        attribution = lines_input.attribution()
        answers: list[bytes] = []
        documents: list[dict[str, Any]] = []
        numbers: dict[str, int] = {}
        for number, line in enumerate(lines, start=before + 1):
            if not line.strip():
                continue
            document = line_document(line, attribution)
            if isinstance(document, str):
                answers.append(_encode({"line": number, "error": document}))
            else:
                numbers.setdefault(str(document.get("event_id")), number)
                documents.append(document)
        while documents:
            taken = lines_input.intake.take(documents)
            if not isinstance(taken, Refused):
                for event_id, reason in taken.rejections:
                    answers.append(_encode({"line": numbers.get(str(event_id)), "error": reason}))
                break
            if self.server.connections.stopping:
                return None
            time.sleep(taken.retry_after)
        return answers


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode() + b"\n"

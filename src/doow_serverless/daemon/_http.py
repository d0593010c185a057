"""The daemon's HTTP ingest: Doow's ``POST /telemetry/events``, answered as Doow answers.

Any Doow SDK sends through the daemon by setting its endpoint here. A batch is answered
202 (or 207, listing the events refused and why) only once its valid events are fsync'ed
to the spool; 400/413/415 for a request Doow would refuse; 401 without the local token,
when one is set (clients present it as their API key, so the real key stays with the
daemon); 429 with ``Retry-After`` when the spool is full; 503 while stopping. The body
decoding and checks are the wire module's, as in the local collector.

``GET /healthz`` answers what the daemon holds and has done, as JSON.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import socket
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from .._core.constants import INGEST_PATH, LOGGER_NAME, MAX_BATCH_BYTES, SDK_VERSION
from .._core.wire import WireError, decode_body, error_body, read_batch, sanitize_server_text
from ._intake import Intake, Refused
from ._server import IDLE_TIMEOUT_S

logger = logging.getLogger(LOGGER_NAME)

HEALTH_PATH = "/healthz"
# A gzip body is smaller than what it inflates to, which decode_body caps; a little more
# than the cap leaves room for gzip's own overhead on incompressible bodies.
MAX_REQUEST_BYTES = MAX_BATCH_BYTES + 65_536
_JSON = "application/json"
_DIGITS = re.compile(r"[0-9]{1,18}")


class Access:
    """What a request must present; replaced as a whole on a reload."""

    def __init__(self, token: str | None) -> None:
        self._expected = None if token is None else f"Bearer {token}".encode()

    def allows(self, authorization: str | None) -> bool:
        if self._expected is None:
            return True
        given = (authorization or "").strip().encode("utf-8", "replace")
        return hmac.compare_digest(given, self._expected)

    def __repr__(self) -> str:
        return f"Access(token={'<set>' if self._expected else None})"


class Ingest:
    """What the handler answers with, shared by the TCP and Unix servers (``server.ingest``)."""

    def __init__(self, intake: Intake, status: Callable[[], dict[str, Any]]) -> None:
        self.intake = intake
        self.status = status
        self.access = Access(None)  # replaced as a whole on a reload


class IngestHandler(BaseHTTPRequestHandler):
    server: Any  # a ServerMixin server with an ``ingest`` attribute
    protocol_version = "HTTP/1.1"
    server_version = f"doow-serverless-daemon/{SDK_VERSION}"
    sys_version = ""
    default_request_version = "HTTP/1.0"
    wbufsize = 65_536  # the head and body of an answer leave in one write

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(IDLE_TIMEOUT_S)
        if self.connection.family in (socket.AF_INET, socket.AF_INET6):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            self.server.connections.busy(self.connection, False)

    def parse_request(self) -> bool:
        # The request line is in: from now until answered, a stop lets this one finish.
        self.server.connections.busy(self.connection, True)
        return super().parse_request()

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != INGEST_PATH:
            self._error(404, "no such path; send batches to " + INGEST_PATH)
            return
        self._ingest()

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == HEALTH_PATH:
            self._json(200, self.server.ingest.status())
        elif self.path.split("?", 1)[0] == INGEST_PATH:
            self._error(405, "use POST", (("Allow", "POST"),))
        else:
            self._error(404, "no such path")

    def _ingest(self) -> None:
        ingest: Ingest = self.server.ingest
        if self.server.connections.stopping:
            self._error(503, "the daemon is stopping; send again later", (("Retry-After", "1"),))
            return
        if not ingest.access.allows(self.headers.get("Authorization")):
            self._error(401, "the local token is missing or wrong")
            return
        raw = self._body()
        if raw is None:
            return
        intake = ingest.intake
        full = intake.full(len(raw))
        if full is not None:
            self._refused(full)
            return
        try:
            batch = read_batch(decode_body(raw, self.headers.get("Content-Encoding")))
        except WireError as exc:
            self._error(exc.status, exc.message)
            return
        except ValueError as exc:  # an integer literal longer than Python will parse
            self._error(400, f"malformed JSON: {sanitize_server_text(exc)}")
            return
        taken = intake.take(batch.events)
        if isinstance(taken, Refused):
            self._refused(taken)
            return
        answer: dict[str, Any] = {
            "accepted": taken.accepted,
            "rejected": len(taken.rejections),
            "batch_id": batch.batch_id or taken.batch_id,
        }
        if not taken.rejections:
            self._json(202, answer)
            return
        answer["rejections"] = [
            {"event_id": event_id, "reason": reason} for event_id, reason in taken.rejections
        ]
        self._json(207, answer)

    def _body(self) -> bytes | None:
        """The request body, or None when the request was refused (and answered)."""
        if self.headers.get("Transfer-Encoding") is not None:
            self._error(411, "send Content-Length; chunked bodies are not supported", close=True)
            return None
        declared = [value.strip() for value in self.headers.get_all("Content-Length") or []]
        if len(set(declared)) != 1 or not _DIGITS.fullmatch(declared[0]):
            self._error(
                411 if not declared else 400,
                "a single valid Content-Length is required",
                close=True,
            )
            return None
        length = int(declared[0])
        if length > MAX_REQUEST_BYTES:
            self._error(413, f"body of {length} bytes exceeds {MAX_REQUEST_BYTES}", close=True)
            return None
        body = self.rfile.read(length)
        if len(body) < length:
            self.close_connection = True
            return None
        return body

    def _refused(self, refused: Refused) -> None:
        self._error(refused.status, refused.message, (("Retry-After", str(refused.retry_after)),))

    def _error(
        self,
        status: int,
        message: str,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        close: bool = False,
    ) -> None:
        self._json(status, error_body(status, message), headers, close=close)

    def _json(
        self,
        status: int,
        document: Any,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        close: bool = False,
    ) -> None:
        body = json.dumps(document, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        if close or self.server.connections.stopping:
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors http.server finds while parsing a request: a JSON 4xx, and close."""
        code = 400 if code >= 500 else code
        self._error(code, sanitize_server_text(message or "malformed request"), close=True)

    def address_string(self) -> str:
        address = self.client_address
        return str(address[0]) if isinstance(address, tuple) and address else "unix"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

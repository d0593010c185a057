"""Answering one HTTP request: routing, framing, fault steps, the JSON endpoints.

Nothing a client sends may crash a handler or make it answer 5xx: every refusal is a 4xx
with a JSON ``{"message", "errorClass"}`` body. Only a genuine bug answers 500 (logged).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from doow_serverless._core.constants import INGEST_PATH, SDK_VERSION
from doow_serverless._core.wire import sanitize_server_text

from ._faults import ACCEPT, FaultPlanError, FaultStep, parse_plan
from ._http import encode_json, error_body, is_loopback, logger
from ._ingest import TOO_LARGE_BY_PLAN
from ._page import content_security_policy, render_page
from ._state import MAX_EVENTS_LIMIT

if TYPE_CHECKING:
    from ._server import CollectorHTTPServer

JSON_TYPE = "application/json"
MAX_HANG_S = 300.0
CONTROL_BODY_LIMIT = 1_048_576
_DRAIN_BYTES = 8 * 1_048_576
_DRAIN_SECONDS = 1.0
_DIGITS = re.compile(r"[0-9]{1,18}")


Route = Callable[["CollectorHandler", str, bytes], None]


class CollectorHandler(BaseHTTPRequestHandler):
    server: CollectorHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = f"doow-collector/{SDK_VERSION}"
    sys_version = ""
    # http.server's default, HTTP/0.9, answers a malformed request line without a status line.
    default_request_version = "HTTP/1.0"
    # Buffered, so the head and body of an answer leave in one write (and one segment).
    wbufsize = 65_536

    _answered: int | None = None
    _note = ""
    _is_ingest = False

    def setup(self) -> None:
        super().setup()
        # Also bounds a stalled body read; an idle keep-alive connection is then closed.
        self.connection.settimeout(self.server.state.idle_timeout)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.state.counters.add(connections=1)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # -- dispatch ------------------------------------------------------------------------

    def _dispatch(self) -> None:
        started = time.monotonic()
        self._answered = None
        self._note = ""
        url = urlsplit(self.path)
        self._is_ingest = url.path == INGEST_PATH
        self.server.state.counters.add(http_requests=1)
        try:
            self._route(url.path, url.query)
        except OSError as exc:  # the client went away or timed out mid-request
            self.close_connection = True
            self._note = f"connection error: {type(exc).__name__}"
        except Exception:
            logger.exception("internal error answering %s %s", self.command, _shown(url.path))
            self.close_connection = True
            if self._answered is None:
                self._send_error(500, "internal error; see the collector's log", close=True)
        finally:
            self._log_line(url.path, time.monotonic() - started)
            self._is_ingest = False

    def _route(self, path: str, query: str) -> None:
        if self._is_ingest:
            if self.command != "POST":
                self._send_error(405, "use POST", headers=(("Allow", "POST"),), close=True)
                return
            self._ingest()
            return
        body = self._read_body(CONTROL_BODY_LIMIT, required=False)
        if body is None:
            return
        methods = _ROUTES.get(path)
        if methods is None:
            self._send_error(404, f"no such path: {_shown(path)}")
            return
        handler = methods.get(self.command)
        if handler is None:
            allowed = ", ".join(sorted(methods))
            self._send_error(405, f"use {allowed}", headers=(("Allow", allowed),))
            return
        handler(self, query, body)

    # -- framing -------------------------------------------------------------------------

    def _read_body(self, limit: int, *, required: bool) -> bytes | None:
        """The request body, or None when the request was refused (already answered)."""
        if self.headers.get("Transfer-Encoding") is not None:
            self._refuse(411, "chunked bodies are not supported; send Content-Length")
            return None
        declared = [value.strip() for value in self.headers.get_all("Content-Length") or []]
        if not declared:
            if required:
                self._refuse(411, "Content-Length is required")
                return None
            return b""
        if len(set(declared)) != 1 or not _DIGITS.fullmatch(declared[0]):
            self._refuse(400, "Content-Length is not a valid length", _DRAIN_BYTES)
            return None
        length = int(declared[0])
        if length > limit:
            self._refuse(413, f"body of {length} bytes exceeds the limit of {limit} bytes", length)
            return None
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self._send_error(408, "timed out waiting for the request body", close=True)
            return None
        if len(body) < length:
            self.close_connection = True
            self._note = "client closed mid-body"
            return None
        return body

    def _refuse(self, status: int, message: str, declared: int | None = None) -> None:
        """Answer without reading the body, then close after discarding a bounded amount.

        Closing with unread data would make the kernel send RST, and the client could lose
        the answer; discarding a little first lets it read why it was refused.
        """
        self._send_error(status, message, close=True)
        if declared is None and self.headers.get("Transfer-Encoding") is None:
            return  # no body was announced, so none is coming
        budget = _DRAIN_BYTES if declared is None else min(declared, _DRAIN_BYTES)
        deadline = time.monotonic() + _DRAIN_SECONDS
        try:
            self.connection.shutdown(socket.SHUT_WR)  # the client sees the answer is complete
            while budget > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.connection.settimeout(left)
                chunk = self.rfile.read1(min(budget, 65_536))
                if not chunk:
                    break
                budget -= len(chunk)
        except OSError:
            pass

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = JSON_TYPE,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        close: bool = False,
    ) -> None:
        self._answered = status
        if self._is_ingest:
            self.server.state.counters.record_ingest_status(status)
        has_body = status not in (204, 304)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if has_body:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        if close or self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if has_body and self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _send_json(self, status: int, document: Any) -> None:
        self._send(status, encode_json(document))

    def _send_error(
        self,
        status: int,
        message: str,
        headers: tuple[tuple[str, str], ...] = (),
        *,
        close: bool = False,
    ) -> None:
        body = encode_json(error_body(status, message))
        self._send(status, body, headers=headers, close=close)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors http.server raises while parsing a request: JSON, 4xx, connection closed."""
        if code == HTTPStatus.NOT_IMPLEMENTED:
            code, message = 405, f"method '{_shown(str(self.command))}' is not allowed"
        elif code >= 500:
            code = 400
        text = _shown(message or HTTPStatus(code).phrase)
        self.close_connection = True
        self._note = text
        with contextlib.suppress(OSError):
            self._send_error(code, text, close=True)
        logger.info("%s refused a malformed request: %s %s", self._client(), code, text)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Replaced by :meth:`_log_line`, written once the answer is complete."""

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self._client(), format % args)

    def _log_line(self, path: str, elapsed: float) -> None:
        status = "-" if self._answered is None else str(self._answered)
        logger.info(
            "%s %s %s %s %s%.1fms",
            self._client(),
            self.command,
            _shown(path),
            status,
            f"{self._note} " if self._note else "",
            elapsed * 1000,
        )

    def _client(self) -> str:
        return str(self.client_address[0])

    # -- ingest --------------------------------------------------------------------------

    def _ingest(self) -> None:
        counters = self.server.state.counters
        counters.ingest_started()
        held: threading.Event | None = None
        try:
            held = self._answer_ingest()
            if held is not None:  # a hang step: no longer in progress, held until released
                counters.hold_started()
        finally:
            counters.ingest_ended()
        if held is not None:
            try:
                held.wait(MAX_HANG_S)
            finally:
                counters.hold_ended()

    def _answer_ingest(self) -> threading.Event | None:
        """Answer (or drop) the request; the event to wait on when a hang step holds it."""
        state = self.server.state
        raw = self._read_body(state.max_body_bytes, required=True)
        if raw is None:
            return None
        planned, latency_s, release = state.faults.take()
        step = planned or ACCEPT
        if planned is not None:
            self._note = f"fault={step.kind}"
        pause = latency_s + step.delay_s
        if pause > 0 and state.stopping.wait(pause):
            self._drop("stopped")
            return None
        if step.kind == "hang" and not step.after_store:
            self._drop("hang")  # counted now, so a test can see the request is hanging
            return release
        if not step.after_store:
            if step.kind == "reset":
                self._reset()
                return None
            if step.kind == "status":
                if step.status == 413:  # a single event answered 413 is refused for good
                    state.ingestor.refuse_if_alone(
                        self.headers.get("Authorization"),
                        raw,
                        self.headers.get("Content-Encoding"),
                        TOO_LARGE_BY_PLAN,
                    )
                self._send_fault(step, stored=False)
                return None
        outcome = state.ingestor.process(
            self.headers.get("Authorization"),
            raw,
            self.headers.get("Content-Encoding"),
            step.reject,
            answered=step.kind not in ("reset", "status", "hang"),  # those answer otherwise
        )
        self._note = f"{self._note} {outcome.note}".strip()
        if step.kind == "hang":  # stored, and the answer never comes
            self._drop("hang")
            return release
        if step.kind == "reset":
            self._reset()
        elif step.kind == "status":
            self._send_fault(step, stored=True)
        else:
            self._send_json(outcome.status, outcome.body)
        return None

    def _send_fault(self, step: FaultStep, *, stored: bool) -> None:
        phrase = _phrase(step.status)
        when = " after storing the batch" if stored else ""
        message = step.message or f"injected fault{when}: {step.status} {phrase}"
        headers = step.headers
        if step.retry_after is not None:
            headers = (("Retry-After", step.retry_after), *headers)
        self._send_error(step.status, message, headers=headers)

    def _drop(self, reason: str) -> None:
        """Close the connection without answering."""
        self.server.state.counters.record_ingest_status(reason)
        self.close_connection = True

    def _reset(self) -> None:
        """Abort the connection: SO_LINGER 0 turns the close into a TCP RST."""
        self._drop("reset")
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # release the makefile() references, so that close() closes the socket now
        self.rfile.close()
        self.wfile.close()
        self.connection.close()

    # -- reading -------------------------------------------------------------------------

    def _page(self, query: str, body: bytes) -> None:
        nonce = secrets.token_urlsafe(16)
        headers = (
            ("Content-Security-Policy", content_security_policy(nonce)),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        )
        self._send(200, render_page(nonce), "text/html; charset=utf-8", headers)

    def _healthz(self, query: str, body: bytes) -> None:
        self._send_json(200, {"status": "ok"})

    def _stats(self, query: str, body: bytes) -> None:
        self._send_json(200, self.server.state.stats())

    def _events(self, query: str, body: bytes) -> None:
        params = parse_qs(query, keep_blank_values=True)
        limit_text = _param(params, "limit") or "100"
        limit = int(limit_text) if _DIGITS.fullmatch(limit_text) else 0
        if not 1 <= limit <= MAX_EVENTS_LIMIT:
            self._send_error(400, f"limit must be an integer from 1 to {MAX_EVENTS_LIMIT}")
            return
        events = self.server.state.store.events(
            metric=_param(params, "metric") or None,
            license_id=_param(params, "license_id") or None,
            limit=limit,
        )
        self._send_json(200, {"events": events})

    # -- control (loopback only) ---------------------------------------------------------

    def _from_loopback(self) -> bool:
        if is_loopback(str(self.client_address[0])):
            return True
        self._send_error(403, "the control endpoints answer loopback clients only")
        return False

    def _get_faults(self, query: str, body: bytes) -> None:
        if self._from_loopback():
            self._send_json(200, self.server.state.faults.describe())

    def _set_faults(self, query: str, body: bytes) -> None:
        if not self._from_loopback():
            return
        try:
            plan = parse_plan(json.loads(body))
        except (ValueError, RecursionError) as exc:  # FaultPlanError, JSON and UTF-8 errors
            prefix = "" if isinstance(exc, FaultPlanError) else "fault plan is not valid JSON: "
            self._send_error(400, _shown(f"{prefix}{exc}"))
            return
        self.server.state.faults.set(plan)
        self._send_json(200, self.server.state.faults.describe())

    def _clear_faults(self, query: str, body: bytes) -> None:
        if self._from_loopback():
            self.server.state.faults.set(None)
            self._send_json(200, self.server.state.faults.describe())

    def _reset_state(self, query: str, body: bytes) -> None:
        if self._from_loopback():
            self.server.state.reset()
            self._send_json(200, {"reset": True})

    def _control_stats(self, query: str, body: bytes) -> None:
        if self._from_loopback():
            self._stats(query, body)


_ROUTES: dict[str, dict[str, Route]] = {
    "/": {"GET": CollectorHandler._page},
    "/healthz": {"GET": CollectorHandler._healthz},
    "/stats": {"GET": CollectorHandler._stats},
    "/events": {"GET": CollectorHandler._events},
    "/_doow/faults": {
        "GET": CollectorHandler._get_faults,
        "POST": CollectorHandler._set_faults,
        "DELETE": CollectorHandler._clear_faults,
    },
    "/_doow/reset": {"POST": CollectorHandler._reset_state},
    "/_doow/stats": {"GET": CollectorHandler._control_stats},
}


def _param(params: dict[str, list[str]], name: str) -> str:
    values = params.get(name)
    return values[0].strip() if values else ""


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _shown(text: str) -> str:
    return sanitize_server_text(text)[:200]

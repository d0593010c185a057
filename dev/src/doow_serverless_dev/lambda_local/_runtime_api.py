"""Lambda's Runtime API and Extensions API, played locally: the control plane the runtime
client (and any extension in its process) polls.

The real runtime client (``awslambdaric``) asks ``GET .../invocation/next`` for work,
which blocks until an invocation is queued, and answers it with ``POST .../{id}/response``
or ``.../{id}/error``; a handler that cannot be loaded is reported to ``.../init/error``.
The deadline header is set when the invocation is handed out, from its timeout, as Lambda
does. One server serves one execution environment: when it is killed, its server goes
with it, so an invocation can never be handed to a connection of a dead process.

Extensions (``/2020-01-01/extension/...``) are played as Lambda plays them: registration
is open until the runtime first asks for an invocation (then 403
``Extension.RegistrationClosed``); an internal extension may register for ``INVOKE`` only
(and, on Managed Instances, for nothing); the first invocation is handed out once every
extension has called ``event/next`` (the end of init); each invocation is sent to the
extensions registered for ``INVOKE`` as an event; and an invocation is **complete** only
when the runtime has answered *and* each of them has called ``event/next`` again. Until
then the next invocation waits, and the environment is not frozen.
"""

from __future__ import annotations

import json
import queue
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API_PREFIX = "/2018-06-01/runtime"
EXTENSION_PREFIX = "/2020-01-01/extension"
# Lambda's limit on a synchronous response payload.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
_POLL_S = 0.1


@dataclass
class Invocation:
    """One invocation: what is handed to the runtime, and what it answered."""

    event: bytes
    timeout: float  # seconds from hand-out to deadline
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:local"
    trace_id: str = field(
        default_factory=lambda: f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
    )
    # Set when handed out: the deadline, as the runtime sees it (epoch ms) and as a
    # monotonic time for the harness.
    deadline_ms: int | None = None
    deadline_monotonic: float | None = None
    dispatched_monotonic: float | None = None
    # Set when answered.
    outcome: str | None = None  # "response" | "error"
    body: bytes = b""
    error_type: str | None = None
    answered_monotonic: float | None = None
    closed: bool = False  # no answer is taken any more (answered, or its process killed)
    # Extensions this invocation was sent to, and those that have called next since.
    awaited: set[str] = field(default_factory=set)
    released_by: set[str] = field(default_factory=set)
    completed_monotonic: float | None = None

    @property
    def complete(self) -> bool:
        return self.completed_monotonic is not None


@dataclass
class Extension:
    """One registered extension (here, internal: a thread in the runtime process)."""

    identifier: str
    name: str
    events: list[str]
    ready: bool = False  # has called event/next at least once (its init is done)
    pending: list[Invocation] = field(default_factory=list)  # events not yet taken
    current: Invocation | None = None  # the invocation it was last sent


class RuntimeAPIServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        function_name: str = "local",
        handler: str = "",
        managed: bool = False,
    ) -> None:
        super().__init__((host, 0), _Handler)
        self.changed = threading.Condition()
        self._queue: queue.Queue[Invocation] = queue.Queue()
        self._invocations: dict[str, Invocation] = {}
        self._pollers = 0
        self.init_error: dict[str, Any] | None = None
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.function_name = function_name
        self.handler = handler
        self.extensions: dict[str, Extension] = {}
        # Lambda Managed Instances: invocations at once, no extension may take INVOKE.
        self.managed = managed
        self.registration_open = True
        self._last: Invocation | None = None  # the last invocation handed out

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A killed runtime's connection resets: that is the harness working, not a bug.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> RuntimeAPIServer:
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"lambda-runtime-api:{self.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        with self.changed:
            for invocation in self._invocations.values():
                invocation.closed = True
            self.changed.notify_all()
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def enqueue(self, invocation: Invocation) -> None:
        with self.changed:
            self._invocations[invocation.request_id] = invocation
        self._queue.put(invocation)

    @property
    def polling(self) -> bool:
        """True while the runtime waits in ``/invocation/next`` and the last invocation is
        complete (its extensions released it too): idle between invocations."""
        return self._pollers > 0 and (self._last is None or self._last.complete)

    # -- called by the handler threads ------------------------------------------------

    def next_invocation(self, connected: Callable[[], bool] = lambda: True) -> Invocation | None:
        """The next invocation for a poller, None once the server stops or the poller is
        gone (``connected``: a worker killed while it waited is handed nothing)."""
        with self.changed:
            self._pollers += 1
            self.registration_open = False
            self.changed.notify_all()
        try:
            while not self.stopping.is_set() and connected():
                with self.changed:
                    # Init ends when every extension has asked for its first event; an
                    # invocation is handed out once the one before is complete.
                    if not self.changed.wait_for(self._may_dispatch, timeout=_POLL_S):
                        continue
                try:
                    invocation = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if not connected():  # gone meanwhile: the invocation waits for another
                    self._queue.put(invocation)
                    return None
                with self.changed:
                    invocation.dispatched_monotonic = time.monotonic()
                    invocation.deadline_monotonic = invocation.dispatched_monotonic + (
                        invocation.timeout
                    )
                    invocation.deadline_ms = int((time.time() + invocation.timeout) * 1000)
                    self._last = invocation
                    for extension in self.extensions.values():
                        if "INVOKE" in extension.events:
                            invocation.awaited.add(extension.identifier)
                            extension.pending.append(invocation)
                    self.changed.notify_all()
                return invocation
            return None
        finally:
            with self.changed:
                self._pollers -= 1
                self.changed.notify_all()

    def answer(self, request_id: str, outcome: str, body: bytes, error_type: str | None) -> bool:
        with self.changed:
            invocation = self._invocations.get(request_id)
            if invocation is None or invocation.closed or invocation.dispatched_monotonic is None:
                return False
            invocation.outcome = outcome
            invocation.body = body
            invocation.error_type = error_type
            invocation.answered_monotonic = time.monotonic()
            invocation.closed = True
            self._complete_if_released(invocation)
            self.changed.notify_all()
            return True

    def _may_dispatch(self) -> bool:
        """Init is over (every extension asked for its first event) and the invocation
        handed out last, if any, is complete."""
        if not all(extension.ready for extension in self.extensions.values()):
            return False
        return self.managed or self._last is None or self._last.complete

    def _complete_if_released(self, invocation: Invocation) -> None:
        if (
            invocation.outcome is not None
            and invocation.awaited <= invocation.released_by
            and invocation.completed_monotonic is None
        ):
            invocation.completed_monotonic = time.monotonic()

    # -- the Extensions API -----------------------------------------------------------

    def register_extension(self, name: str, events: list[str]) -> tuple[int, dict[str, Any]]:
        """Register an (internal) extension; the HTTP status and the answer's body."""
        with self.changed:
            if not self.registration_open:
                return 403, {
                    "errorType": "Extension.RegistrationClosed",
                    "errorMessage": "Extension registration closed already",
                }
            unknown = [event for event in events if event not in ("INVOKE", "SHUTDOWN")]
            if unknown or "SHUTDOWN" in events or (self.managed and events):
                return 403, {
                    "errorType": "Extension.InvalidEventType",
                    "errorMessage": "No events allowed for internal extensions"
                    if self.managed
                    else "an internal extension may register for INVOKE only",
                }
            identifier = str(uuid.uuid4())
            self.extensions[identifier] = Extension(identifier, name, list(events))
            self.changed.notify_all()
            return 200, {
                "functionName": self.function_name,
                "functionVersion": "$LATEST",
                "handler": self.handler,
                "identifier": identifier,
            }

    def next_extension_event(self, identifier: str) -> dict[str, Any] | None:
        """Block until the extension's next event; None when the server stops. Calling it
        releases the invocation it was sent last (the extension is done with it)."""
        with self.changed:
            extension = self.extensions.get(identifier)
            if extension is None:
                return None
            extension.ready = True
            done = extension.current
            if done is not None:
                done.released_by.add(identifier)
                self._complete_if_released(done)
                extension.current = None
            self.changed.notify_all()
            while not self.stopping.is_set():
                if extension.pending:
                    invocation = extension.pending.pop(0)
                    extension.current = invocation
                    return {
                        "eventType": "INVOKE",
                        "deadlineMs": invocation.deadline_ms,
                        "requestId": invocation.request_id,
                        "invokedFunctionArn": invocation.function_arn,
                        "tracing": {"type": "X-Amzn-Trace-Id", "value": invocation.trace_id},
                    }
                self.changed.wait(_POLL_S)
            return None

    def record_init_error(self, document: dict[str, Any]) -> None:
        with self.changed:
            self.init_error = document
            self.changed.notify_all()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the runtime client keeps its connection open
    server: RuntimeAPIServer

    def setup(self) -> None:
        super().setup()
        # Headers and body are separate writes; without this, Nagle's algorithm and the
        # client's delayed ACK hold the body back ~40 ms, eating into the deadline.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        if self.path == f"{EXTENSION_PREFIX}/event/next":
            self._extension_next()
            return
        if self.path != f"{API_PREFIX}/invocation/next":
            self._reply(HTTPStatus.NOT_FOUND, {"errorMessage": "unknown path"})
            return
        invocation = self.server.next_invocation(self._client_connected)
        if invocation is None:  # shutting down, or the runtime is gone
            self._reply(HTTPStatus.GONE, {"errorMessage": "the runtime API is stopping"})
            self.close_connection = True
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(invocation.event)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", invocation.request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(invocation.deadline_ms))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", invocation.function_arn)
        self.send_header("Lambda-Runtime-Trace-Id", invocation.trace_id)
        self.end_headers()
        self.wfile.write(invocation.event)

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"errorMessage": "payload too large"})
            return
        path = self.path
        if path == f"{EXTENSION_PREFIX}/register":
            self._register(body)
            return
        if path in (f"{EXTENSION_PREFIX}/init/error", f"{EXTENSION_PREFIX}/exit/error"):
            self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
            return
        if path == f"{API_PREFIX}/init/error":
            self.server.record_init_error(_json_or_text(body))
            self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
            return
        prefix = f"{API_PREFIX}/invocation/"
        if path.startswith(prefix):
            request_id, _, action = path[len(prefix) :].partition("/")
            if action in ("response", "error"):
                error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
                if self.server.answer(request_id, action, body, error_type):
                    self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
                else:
                    self._reply(
                        HTTPStatus.BAD_REQUEST,
                        {"errorMessage": "unknown or answered request id"},
                        error_type="InvalidRequestID",
                    )
                return
        self._reply(HTTPStatus.NOT_FOUND, {"errorMessage": "unknown path"})

    def _register(self, body: bytes) -> None:
        name = self.headers.get("Lambda-Extension-Name") or ""
        try:
            document = json.loads(body or b"{}")
            events = [str(event) for event in document.get("events", [])]
        except (ValueError, AttributeError, TypeError):
            self._reply(HTTPStatus.BAD_REQUEST, {"errorType": "InvalidRequest"})
            return
        status, answer = self.server.register_extension(name, events)
        if status != HTTPStatus.OK:
            self._reply(HTTPStatus(status), answer)
            return
        identifier = answer.pop("identifier")
        payload = json.dumps(answer).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Lambda-Extension-Identifier", identifier)
        self.end_headers()
        self.wfile.write(payload)

    def _extension_next(self) -> None:
        identifier = self.headers.get("Lambda-Extension-Identifier") or ""
        if identifier not in self.server.extensions:
            self._reply(HTTPStatus.FORBIDDEN, {"errorType": "Extension.UnknownExtensionIdentifier"})
            return
        event = self.server.next_extension_event(identifier)
        if event is None:  # stopping
            self._reply(HTTPStatus.GONE, {"errorMessage": "the runtime API is stopping"})
            self.close_connection = True
            return
        payload = json.dumps(event).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Lambda-Extension-Event-Identifier", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(payload)

    def _client_connected(self) -> bool:
        """The runtime is still there: its connection is neither closed nor reset."""
        try:
            data: bytes = self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return data != b""

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD_BYTES:
            self.rfile.read(length)
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            chunk_size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if chunk_size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                break
            chunks.append(self.rfile.read(chunk_size))
            self.rfile.readline(1024)
            size += chunk_size
        return None if size > MAX_PAYLOAD_BYTES else b"".join(chunks)

    def _reply(self, status: HTTPStatus, document: object, error_type: str | None = None) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if error_type:
            self.send_header("Lambda-Runtime-Function-Error-Type", error_type)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _json_or_text(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {"errorMessage": body.decode("utf-8", "replace")}
    return document if isinstance(document, dict) else {"errorMessage": str(document)}

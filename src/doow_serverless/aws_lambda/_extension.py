"""Lambda's Extensions API, from inside the runtime process: an *internal* extension.

A thread of this process registers with the Extensions API (``2020-01-01``) during the
init phase, for ``INVOKE`` events. Lambda then sends each invocation to it as well as to
the runtime, returns the runtime's response to the caller as soon as the runtime posts it,
and freezes the environment only once the runtime *and* the extension have called
``next``: the extension's work between the two is after the response, within the
invocation's time (it is billed, and a deadline still ends it).

Registration is refused once the runtime has asked for its first invocation (403
``Extension.RegistrationClosed``), and on Lambda Managed Instances (where an extension may
not register for ``INVOKE``); an emulator may not serve the API at all.

Every call here is to the local Runtime API address, over one kept-alive socket with the
least of HTTP/1.1 this API needs (a request with a length; an answer with a length,
chunks, or up to the close). Not ``http.client``: registering happens in every init that
chooses this mode, before the first response, and importing ``http.client`` (with its
``email`` parser and ``ssl``) would cost that init about 10 ms.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from typing import IO, Any

from .._core.constants import ENV_LAMBDA_RUNTIME_API

API = "/2020-01-01/extension"
# Registration is part of a function's init: it must not hold it up for long.
REGISTER_TIMEOUT_S = 2.0
# Bounds on an answer from the local API (its events are small JSON documents).
_MAX_LINE = 65_536
_MAX_HEADERS = 100
_MAX_BODY = 6 * 1024 * 1024


class ExtensionError(Exception):
    """The Extensions API refused or could not be reached; the message says why."""


class ExtensionClient:
    """One registered extension's calls: ``register`` once, then ``next_event`` in a loop."""

    def __init__(self, runtime_api: str, name: str) -> None:
        self._address = runtime_api
        self._name = name
        self._identifier: str | None = None
        self._socket: socket.socket | None = None
        self._reader: IO[bytes] | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], name: str) -> ExtensionClient:
        address = environ.get(ENV_LAMBDA_RUNTIME_API, "").strip()
        if not address:
            raise ExtensionError(f"{ENV_LAMBDA_RUNTIME_API} is not set: not on Lambda")
        return cls(address, name)

    def register(self, events: list[str]) -> dict[str, Any]:
        """Register for ``events``; Lambda's answer (function name, version, handler)."""
        status, headers, body = self._request(
            "POST",
            f"{API}/register",
            {"Lambda-Extension-Name": self._name, "Content-Type": "application/json"},
            json.dumps({"events": events}).encode(),
            timeout=REGISTER_TIMEOUT_S,
        )
        if status != 200:
            raise ExtensionError(f"registration refused ({status}: {_error_type(body)})")
        identifier = headers.get("lambda-extension-identifier")
        if not identifier:
            raise ExtensionError("registration answered without an extension identifier")
        self._identifier = identifier
        answer = _json_object(body)
        return answer

    def next_event(self) -> dict[str, Any]:
        """Block until the next event (this also says the extension is done with the one
        before). Raises ExtensionError when the API answers otherwise."""
        if self._identifier is None:
            raise ExtensionError("not registered")
        status, _, body = self._request(
            "GET", f"{API}/event/next", {"Lambda-Extension-Identifier": self._identifier}, None
        )
        if status != 200:
            raise ExtensionError(f"event/next answered {status}: {_error_type(body)}")
        return _json_object(body)

    def _request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request and its answer. ``timeout`` bounds each socket operation; None
        waits as long as it takes (the long poll of ``event/next``)."""
        payload = body or b""
        head = "".join(
            [
                f"{method} {path} HTTP/1.1\r\nHost: {self._address}\r\n",
                *(f"{name}: {value}\r\n" for name, value in headers.items()),
                f"Content-Length: {len(payload)}\r\n\r\n",
            ]
        ).encode("latin-1")
        for attempt in (1, 2):
            reused = self._socket is not None
            try:
                connection, reader = self._connection(timeout)
                connection.settimeout(timeout)
                connection.sendall(head + payload)
                answer = _read_answer(reader)
            except _Closed:
                self.close()
                if reused and attempt == 1:
                    continue  # the API closed a kept-alive connection: once more, anew
                raise ExtensionError(
                    "the Extensions API closed the connection without answering"
                ) from None
            except (OSError, ValueError) as exc:
                self.close()
                raise ExtensionError(f"the Extensions API cannot be reached ({exc})") from None
            status, answer_headers, answer_body, keep_alive = answer
            if not keep_alive:
                self.close()
            return status, answer_headers, answer_body
        raise AssertionError("unreachable")  # pragma: no cover

    def _connection(self, timeout: float | None) -> tuple[socket.socket, IO[bytes]]:
        if self._socket is None or self._reader is None:
            host, _, port = self._address.rpartition(":")
            connection = socket.create_connection((host.strip("[]"), int(port)), timeout)
            self._socket, self._reader = connection, connection.makefile("rb")
        return self._socket, self._reader

    def close(self) -> None:
        connection, reader = self._socket, self._reader
        self._socket = self._reader = None
        for part in (reader, connection):
            if part is not None:
                part.close()


class _Closed(Exception):
    """The connection ended before an answer began."""


def _read_answer(reader: IO[bytes]) -> tuple[int, dict[str, str], bytes, bool]:
    """Status, headers (lower-case names), body, and whether the connection stays open."""
    status_line = reader.readline(_MAX_LINE)
    if not status_line:
        raise _Closed
    version, _, rest = status_line.decode("latin-1").partition(" ")
    status = int(rest.split(" ", 1)[0])
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        line = reader.readline(_MAX_LINE)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise ValueError("too many header lines")
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" and (version != "HTTP/1.0" or connection == "keep-alive")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _read_chunks(reader)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if not 0 <= length <= _MAX_BODY:
            raise ValueError(f"an answer of {length} bytes")
        body = reader.read(length)
        if len(body) < length:
            raise ValueError("the answer was cut short")
    else:  # the body runs to the end of the connection
        body, keep_alive = reader.read(_MAX_BODY), False
    return status, headers, body, keep_alive


def _read_chunks(reader: IO[bytes]) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        length = int(reader.readline(_MAX_LINE).split(b";", 1)[0].strip() or b"x", 16)
        if length == 0:
            break
        size += length
        if size > _MAX_BODY:
            raise ValueError("the answer is too large")
        chunk = reader.read(length)
        if len(chunk) < length:
            raise ValueError("the answer was cut short")
        parts.append(chunk)
        reader.readline(_MAX_LINE)  # the CRLF after the chunk
    while reader.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
        pass  # trailers
    return b"".join(parts)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body or b"{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _error_type(body: bytes) -> str:
    document = _json_object(body)
    kind = document.get("errorType") or document.get("errorMessage")
    text = str(kind) if kind else body.decode("utf-8", "replace").strip()
    # An emulator with its Extensions API switched off answers 404 with an empty body.
    return text[:200] or "no reason given: is the Extensions API switched off?"

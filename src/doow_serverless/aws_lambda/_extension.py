"""Lambda's Extensions API, from inside the runtime process: an *internal* extension.

A thread of this process registers with the Extensions API (``2020-01-01``) during the
init phase, for ``INVOKE`` events. Lambda then sends each invocation to it as well as to
the runtime, returns the runtime's response to the caller as soon as the runtime posts it,
and freezes the environment only once the runtime *and* the extension have called
``next``: the extension's work between the two is after the response, within the
invocation's time (it is billed, and a deadline still ends it).

Registration is refused once the runtime has asked for its first invocation (403
``Extension.RegistrationClosed``), and on Lambda Managed Instances (where an extension may
not register for ``INVOKE``); an emulator may not serve the API at all. Every call here is
to the local Runtime API address, with the standard library's HTTP client.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from typing import Any

from .._core.constants import ENV_LAMBDA_RUNTIME_API

API = "/2020-01-01/extension"
# Registration is part of a function's init: it must not hold it up for long.
REGISTER_TIMEOUT_S = 2.0


class ExtensionError(Exception):
    """The Extensions API refused or could not be reached; the message says why."""


class ExtensionClient:
    """One registered extension's calls: ``register`` once, then ``next_event`` in a loop."""

    def __init__(self, runtime_api: str, name: str) -> None:
        self._address = runtime_api
        self._name = name
        self._identifier: str | None = None
        self._connection: http.client.HTTPConnection | None = None

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
        try:
            connection = self._connection
            if connection is None:
                # No timeout on the long poll: event/next blocks until the next invocation.
                connection = http.client.HTTPConnection(self._address, timeout=timeout)
                self._connection = connection
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            connection.request(method, path, body=body, headers=dict(headers))
            response = connection.getresponse()
            payload = response.read()
            answer_headers = {name.lower(): value for name, value in response.getheaders()}
            return response.status, answer_headers, payload
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise ExtensionError(f"the Extensions API cannot be reached ({exc})") from None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


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

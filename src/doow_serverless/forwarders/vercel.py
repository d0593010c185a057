"""The Vercel forwarder: a Log Drain endpoint, deployed as a function of its own.

One file in your project is the whole deployment (the runtime finds ``app``, a WSGI app)::

    # api/doow-drain.py
    from doow_serverless.forwarders.vercel import app

with ``DOOW_TRACK_API_KEY`` and ``DOOW_TRACK_VERCEL_DRAIN_SECRET`` (the drain's signature
secret) in the project's environment, and ``DOOW_TRACK_VERCEL_DRAIN_VERIFY`` (the token of
Vercel's ownership check) while you add the drain. Point a Log Drain (JSON or NDJSON, gzip
or not) at ``https://<project>/api/doow-drain``.

- ``GET`` / ``HEAD``: 200, nothing else (with ``x-vercel-verify`` set, as on every answer).
- ``POST``: the delivery must be signed (``x-vercel-signature``); unsigned or wrongly
  signed, it is refused with **403** and a JSON body saying which. Then its events are sent
  with their own ids within the invocation's deadline: **200** once every one was answered
  for (delivered, or refused for good by Doow and reported), **503** otherwise, so that
  the drain delivers it again (a resend counts nothing twice). 500 when the forwarder has
  no secret or no key; 400 for a signed body that cannot be inflated; 413 past 16 MB.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._core.constants import ENV_VERCEL_DRAIN_SECRET, ENV_VERCEL_DRAIN_VERIFY, LOGGER_NAME
from .._durability.envelopes import EnvelopeError
from ..vercel import resolve_max_duration
from ..vercel._runner import runtime_time_left
from ._deliver import Forwarder, ForwardingIncomplete, incomplete
from ._drain import inflated, is_gzip, log_lines, signed_by

__all__ = ["MAX_BODY_BYTES", "app"]

logger = logging.getLogger(LOGGER_NAME)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

MAX_BODY_BYTES = 16 * 1024 * 1024
SIGNATURE_HEADER = "HTTP_X_VERCEL_SIGNATURE"

# One per instance: its connection serves the requests the instance gets.
_forwarder = Forwarder()

_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def app(environ: Mapping[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI entry point Vercel's runtime calls for each request."""
    started = time.monotonic()
    status, document = _answer(environ, started)
    body = json.dumps(document).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
    verify = os.environ.get(ENV_VERCEL_DRAIN_VERIFY, "").strip()
    if verify:
        headers.append(("x-vercel-verify", verify))
    start_response(f"{status} {_REASONS[status]}", headers)
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def _answer(environ: Mapping[str, Any], started: float) -> tuple[int, dict[str, Any]]:
    method = environ.get("REQUEST_METHOD", "GET")
    if method in ("GET", "HEAD"):
        return 200, {"forwarder": "doow-serverless", "accepts": "POST from a Vercel Log Drain"}
    if method != "POST":
        return 405, {"error": "method_not_allowed", "message": "a Log Drain delivers by POST"}
    secret = os.environ.get(ENV_VERCEL_DRAIN_SECRET, "")
    if not secret:
        logger.error("doow-serverless forwarder: %s is not set", ENV_VERCEL_DRAIN_SECRET)
        return 500, {
            "error": "not_configured",
            "message": f"{ENV_VERCEL_DRAIN_SECRET} is not set: deliveries cannot be checked",
        }
    body = _read_body(environ)
    if isinstance(body, int):
        message = f"the body must come whole, with a Content-Length, {MAX_BODY_BYTES} bytes at most"
        return body, {"error": "body", "message": message}
    refusal = _refusal(environ, body, secret)
    if refusal is not None:
        logger.warning("doow-serverless forwarder: delivery refused (%s)", refusal["error"])
        return 403, refusal
    try:
        text = inflated(body, environ.get("HTTP_CONTENT_ENCODING"))
    except EnvelopeError as exc:
        return 400, {"error": "undecodable", "message": f"the body cannot be inflated: {exc}"}
    try:
        outcome = _forwarder.forward("vercel drain", log_lines(text), _time_left(started))
    except ForwardingIncomplete as exc:
        return 500, {"error": "not_configured", "message": str(exc)}
    if not outcome.complete:
        error = incomplete(outcome, "the drain delivers it again")
        return 503, {"error": "not_delivered", "message": str(error), **outcome.as_dict()}
    return 200, outcome.as_dict()


def _read_body(environ: Mapping[str, Any]) -> bytes | int:
    """The request body, or the status refusing it."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length_text = str(environ.get("CONTENT_LENGTH") or "").strip()
    if not length_text:
        if "chunked" not in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower():
            return b""
        data = stream.read(MAX_BODY_BYTES + 1)  # the server has de-chunked it
        return 413 if len(data) > MAX_BODY_BYTES else bytes(data)
    try:
        length = int(length_text)
    except ValueError:
        return 411
    if length < 0:
        return 411
    if length > MAX_BODY_BYTES:
        return 413
    return bytes(stream.read(length))


def _refusal(environ: Mapping[str, Any], body: bytes, secret: str) -> dict[str, str] | None:
    """Why the delivery is not Vercel's (the 403's body), or None when it is signed."""
    signature = str(environ.get(SIGNATURE_HEADER) or "")
    if not signature:
        return {
            "error": "unsigned",
            "message": "x-vercel-signature is missing: only a Vercel Log Drain's signed "
            "deliveries are accepted",
        }
    if signed_by(secret, body, signature):
        return None
    if is_gzip(body, environ.get("HTTP_CONTENT_ENCODING")):
        try:
            if signed_by(secret, inflated(body, "gzip"), signature):
                return None
        except EnvelopeError:
            pass
    return {
        "error": "invalid_signature",
        "message": "x-vercel-signature does not match the body signed with the drain's "
        f"secret ({ENV_VERCEL_DRAIN_SECRET})",
    }


def _time_left(started: float) -> float:
    """Seconds to the invocation's deadline: the runtime's, else the configured limit."""
    left = runtime_time_left()
    if left is not None:
        return left
    return resolve_max_duration(None) - (time.monotonic() - started)

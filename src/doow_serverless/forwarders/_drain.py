"""A Vercel Log Drain delivery: is it Vercel's, and what log lines does it hold.

Vercel signs each delivery: ``x-vercel-signature`` is the hex HMAC-SHA1 of the request body
keyed with the drain's signature secret (Vercel's "Drains Security" page). The comparison
is constant-time. For a drain set to gzip, Vercel's pages do not say whether the
compressed or the inflated bytes are signed, so either is accepted (both need the secret).

The body is a JSON array of log entries or NDJSON, one entry a line, gzip-compressed when
the drain is set so (``Content-Encoding: gzip``, or the gzip magic number). Its text goes
to ``read_log`` as it is: the SDK's lines are found inside the entries' ``message`` strings.
"""

from __future__ import annotations

import hashlib
import hmac

from .._durability.envelopes import gunzip

# A function's request body is at most 4.5 MB on Vercel; inflated, a drain's batch is
# refused past this.
MAX_INFLATED_BYTES = 64 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(body: bytes, content_encoding: str | None) -> bool:
    encoding = (content_encoding or "").strip().lower()
    return encoding == "gzip" or body.startswith(_GZIP_MAGIC)


def signed_by(secret: str, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is the HMAC-SHA1 of ``body`` with ``secret`` (constant-time)."""
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest().encode("ascii")
    given = signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected, given)


def inflated(body: bytes, content_encoding: str | None) -> bytes:
    """The body's bytes, gunzipped when compressed (EnvelopeError when that fails)."""
    if is_gzip(body, content_encoding):
        return gunzip(body, MAX_INFLATED_BYTES)
    return body


def log_lines(text: bytes) -> list[str]:
    """The body as lines of text, for ``read_log`` (JSON or NDJSON alike)."""
    return text.decode("utf-8", "replace").splitlines()

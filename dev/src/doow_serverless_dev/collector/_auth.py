"""Who may send events: the configured ``dk_`` keys, or in dev mode any well-formed one."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from doow_serverless._core.constants import KEY_PREFIX

_MAX_KEY_LENGTH = 256


class KeyCheck:
    def __init__(self, keys: Iterable[str] | None) -> None:
        if keys is None:
            self._keys: tuple[bytes, ...] | None = None
            return
        listed = list(keys)
        if not listed:
            raise ValueError("api_keys is empty; pass None for dev mode (any dk_ key)")
        for key in listed:
            if not isinstance(key, str) or not key.startswith(KEY_PREFIX):
                raise ValueError(f"every API key must be a string starting with {KEY_PREFIX!r}")
        self._keys = tuple(key.encode("utf-8", "surrogatepass") for key in listed)

    @property
    def dev_mode(self) -> bool:
        return self._keys is None

    def problem(self, authorization: str | None) -> str | None:
        """Why the ``Authorization`` header is refused, or None when it is accepted."""
        if authorization is None or not authorization.strip():
            return "missing Authorization header"
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return "Authorization must use the Bearer scheme"
        key = key.strip()
        if not key.startswith(KEY_PREFIX):
            return f"API key must start with {KEY_PREFIX}"
        if self._keys is None:
            if len(key) > _MAX_KEY_LENGTH or len(key) <= len(KEY_PREFIX):
                return "API key has an implausible length"
            if not all("!" <= char <= "~" for char in key):
                return "API key contains characters an API key never has"
            return None
        # http.server decodes headers as Latin-1, so this gives back the bytes that were sent.
        offered = key.encode("latin-1", "replace")
        matched = False
        for known in self._keys:
            matched |= hmac.compare_digest(offered, known)
        return None if matched else "unknown API key"

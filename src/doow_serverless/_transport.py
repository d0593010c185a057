"""The network edge: one POST, with a hard per-request timeout. The only module that imports httpx.

httpx is imported on first use, not when ``doow_serverless`` is imported: it costs about
77 ms of cold start on this machine, which a function that never flushes should not pay.
Its exceptions are translated here into :class:`NetworkError`, so nothing above this
module knows which HTTP library is used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol

from ._constants import MAX_RESPONSE_BYTES

if TYPE_CHECKING:
    import httpx

DEFAULT_KEEPALIVE_EXPIRY_S = 30.0
DEFAULT_MAX_CONNECTIONS = 8


class Answer(NamedTuple):
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes  # at most MAX_RESPONSE_BYTES


class NetworkError(Exception):
    """The request got no complete answer: refused, reset, timed out, or cut short."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class Transport(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer: ...

    def close(self) -> None: ...


class HttpxTransport:
    """One keep-alive ``httpx.Client``, built on first use and reused while the process lives.

    On Lambda that is across warm invocations: the TCP (and TLS) connection made by the
    first invocation serves the next ones. An idle connection older than
    ``keepalive_expiry``, or one the server has closed, is dropped before reuse.
    """

    def __init__(
        self,
        *,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY_S,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self._keepalive_expiry = keepalive_expiry
        self._max_connections = max_connections
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._closed = False

    def prepare(self) -> None:
        """Import httpx and build the client now (for example during a function's init phase)."""
        self._get_client()

    def _get_client(self) -> httpx.Client:
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._closed:
                raise NetworkError("the transport is closed")
            if self._client is None:
                import httpx  # noqa: PLC0415 - deferred: see the module docstring

                self._client = httpx.Client(
                    follow_redirects=False,
                    limits=httpx.Limits(
                        max_connections=self._max_connections,
                        max_keepalive_connections=self._max_connections,
                        keepalive_expiry=self._keepalive_expiry,
                    ),
                )
            return self._client

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
        import httpx  # noqa: PLC0415 - already imported by _get_client; this is a dict lookup

        client = self._get_client()
        started = time.monotonic()
        try:
            with client.stream(
                "POST", url, content=body, headers=dict(headers), timeout=httpx.Timeout(timeout)
            ) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= MAX_RESPONSE_BYTES or time.monotonic() - started > timeout:
                        break
                return Answer(
                    status=response.status_code,
                    headers={name.lower(): value for name, value in response.headers.items()},
                    body=b"".join(chunks)[:MAX_RESPONSE_BYTES],
                )
        except httpx.TimeoutException as exc:
            raise NetworkError(_describe(exc), timed_out=True) from None
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            raise NetworkError(_describe(exc)) from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _describe(exc: BaseException) -> str:
    text = str(exc) or "no detail"
    return f"{type(exc).__name__}: {text}"

"""The network edge: one POST that ends by its deadline. The only module that imports httpx.

httpx is imported on first use, not when ``doow_serverless`` is imported: it costs about
77 ms of cold start on this machine, which a function that never flushes should not pay.
Its exceptions are translated here into :class:`NetworkError`, so nothing above this
module knows which HTTP library is used.

httpx applies a timeout to each network operation (connect, each read, each write), so
a server that trickles bytes could stretch one request far past its budget. Every socket
operation is therefore given ``min(its own timeout, time left before the request's
deadline)`` by a thin wrapper around httpcore's network backend. Name resolution is the
one step no timeout reaches (the C library's resolver blocks).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .._core.constants import MAX_RESPONSE_BYTES

if TYPE_CHECKING:
    import httpx

DEFAULT_KEEPALIVE_EXPIRY_S = 30.0
DEFAULT_MAX_CONNECTIONS = 8


class Answer(NamedTuple):
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes  # at most MAX_RESPONSE_BYTES
    complete: bool = True  # False when the body was cut at the size cap or the deadline


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

    def forget_after_fork(self) -> None:
        """In a forked child: the client's sockets are the parent's; build a new one later."""
        self._client = None
        self._lock = threading.Lock()

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

                client = httpx.Client(
                    follow_redirects=False,
                    limits=httpx.Limits(
                        max_connections=self._max_connections,
                        max_keepalive_connections=self._max_connections,
                        keepalive_expiry=self._keepalive_expiry,
                    ),
                )
                _clip_to_deadlines(client)
                _quiet_own_requests()
                self._client = client
            return self._client

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
        started = time.monotonic()
        _deadline.at = started + timeout  # building the client, the first time, counts too
        try:
            client = self._get_client()
            return self._post(
                client, url, body=body, headers=headers, timeout=timeout, started=started
            )
        finally:
            _deadline.at = None

    def _post(
        self,
        client: httpx.Client,
        url: str,
        *,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,
        started: float,
    ) -> Answer:
        import httpx  # noqa: PLC0415 - already imported by _get_client; a dict lookup

        try:
            with client.stream(
                "POST", url, content=body, headers=dict(headers), timeout=httpx.Timeout(timeout)
            ) as response:
                chunks: list[bytes] = []
                size = 0
                complete = True
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES or time.monotonic() - started > timeout:
                        complete = False
                        break
                return Answer(
                    status=response.status_code,
                    headers={name.lower(): value for name, value in response.headers.items()},
                    body=b"".join(chunks)[:MAX_RESPONSE_BYTES],
                    complete=complete,
                )
        except httpx.TimeoutException as exc:
            raise NetworkError(_describe(exc), timed_out=True) from None
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            raise NetworkError(_describe(exc)) from None
        except Exception as exc:
            # Not a network failure httpx knows (a closed client, an encoding problem):
            # its text may quote request headers, so only its type is passed on.
            raise NetworkError(f"{type(exc).__name__} while sending") from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _describe(exc: BaseException) -> str:
    text = str(exc) or "no detail"
    return f"{type(exc).__name__}: {text}"


class _Deadline(threading.local):
    at: float | None = None  # time.monotonic() by which the current request must end


_deadline = _Deadline()
# Below this a socket operation is not attempted: it times out at once.
_MIN_OPERATION_S = 0.001


def _clipped(timeout: float | None) -> float | None:
    at = _deadline.at
    if at is None:
        return timeout
    left = max(at - time.monotonic(), _MIN_OPERATION_S)
    return left if timeout is None else min(timeout, left)


def _clip_to_deadlines(client: httpx.Client) -> None:
    """Wrap the network backend of each of the client's connection pools."""
    import httpcore  # noqa: PLC0415 - with httpx

    class DeadlineStream(httpcore.NetworkStream):
        def __init__(self, inner: httpcore.NetworkStream) -> None:
            self._inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self._inner.read(max_bytes, _clipped(timeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._inner.write(buffer, _clipped(timeout))

        def close(self) -> None:
            self._inner.close()

        def start_tls(
            self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
        ) -> httpcore.NetworkStream:
            upgraded = self._inner.start_tls(ssl_context, server_hostname, _clipped(timeout))
            return DeadlineStream(upgraded)

        def get_extra_info(self, info: str) -> Any:
            return self._inner.get_extra_info(info)

    class DeadlineBackend(httpcore.NetworkBackend):
        def __init__(self, inner: httpcore.NetworkBackend) -> None:
            self._inner = inner

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.NetworkStream:
            stream = self._inner.connect_tcp(
                host, port, _clipped(timeout), local_address, socket_options
            )
            return DeadlineStream(stream)

        def connect_unix_socket(
            self,
            path: str,
            timeout: float | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.NetworkStream:
            stream = self._inner.connect_unix_socket(path, _clipped(timeout), socket_options)
            return DeadlineStream(stream)

        def sleep(self, seconds: float) -> None:
            self._inner.sleep(seconds)

    # httpx builds its httpcore pools itself; the backend is swapped in after the fact
    # (httpx's transports have no public hook for it). tests/delivery checks it works.
    transports = [client._transport, *client._mounts.values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.NetworkBackend):
            pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]


class _OwnRequestsFilter(logging.Filter):
    """Drops httpx's per-request INFO line for this SDK's own requests only.

    Platforms that set the root logger to INFO (Vercel's runtime does) would otherwise get
    a "HTTP Request: POST .../telemetry/events" line in the user's logs for every flush.
    A user's own httpx requests are logged as before: the filter looks at whether this
    thread is inside :meth:`HttpxTransport.post`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return _deadline.at is None


_own_requests_filter = _OwnRequestsFilter()


def _quiet_own_requests() -> None:
    httpx_logger = logging.getLogger("httpx")
    if _own_requests_filter not in httpx_logger.filters:
        httpx_logger.addFilter(_own_requests_filter)

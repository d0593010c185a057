"""The network edge: one POST that ends by its deadline. The only module that imports httpcore.

httpcore (the connection layer under httpx) is imported on first use, not when
``doow_serverless`` is imported: a function that never flushes should not pay for it.
Its exceptions are translated here into :class:`NetworkError`, so nothing above this
module knows which HTTP library is used. Only its public interface is used: a
``ConnectionPool`` built with our own network backend, and per-request timeouts.

A timeout applies to each network operation (connect, each read, each write), so a
server that trickles bytes could stretch one request far past its budget. Every socket
operation is therefore given ``min(its own timeout, time left before the request's
deadline)`` by a thin wrapper around httpcore's network backend. Name resolution is the
one step no timeout reaches (the C library's resolver blocks).

Proxies are taken from ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` (and their lower
case spellings) unless ``NO_PROXY`` names the host; CA certificates from ``SSL_CERT_FILE``
/ ``SSL_CERT_DIR`` when set, else certifi's bundle.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .._core.constants import MAX_RESPONSE_BYTES

if TYPE_CHECKING:
    import ssl

    import httpcore

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


class HttpTransport:
    """One keep-alive connection pool, built on first use and reused while the process lives.

    On Lambda that is across warm invocations: the TCP (and TLS) connection made by the
    first invocation serves the next ones. An idle connection older than
    ``keepalive_expiry``, or one the server has closed, is dropped before reuse.
    """

    def __init__(
        self,
        *,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY_S,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._keepalive_expiry = keepalive_expiry
        self._max_connections = max_connections
        self._environ = os.environ if environ is None else environ
        self._pools: dict[str | None, httpcore.ConnectionPool] = {}  # by proxy URL
        self._lock = threading.Lock()
        self._closed = False

    def forget_after_fork(self) -> None:
        """In a forked child: the pools' sockets are the parent's; build new ones later."""
        self._pools = {}
        self._lock = threading.Lock()

    def prepare(self, url: str | None = None) -> None:
        """Import httpcore and build the pool now (for example during a function's init)."""
        self._pool(url)

    def _pool(self, url: str | None) -> httpcore.ConnectionPool:
        proxy = None if url is None else proxy_for(url, self._environ)
        pool = self._pools.get(proxy)
        if pool is not None:
            return pool
        with self._lock:
            if self._closed:
                raise NetworkError("the transport is closed")
            pool = self._pools.get(proxy)
            if pool is None:
                import httpcore  # noqa: PLC0415 - deferred: see the module docstring

                pool = httpcore.ConnectionPool(
                    ssl_context=ssl_context(self._environ),
                    proxy=None if proxy is None else httpcore.Proxy(proxy),
                    max_connections=self._max_connections,
                    max_keepalive_connections=self._max_connections,
                    keepalive_expiry=self._keepalive_expiry,
                    network_backend=_deadline_backend(),
                )
                self._pools[proxy] = pool
            return pool

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
        started = time.monotonic()
        _deadline.at = started + timeout  # building the pool, the first time, counts too
        try:
            return self._post(self._pool(url), url, body, headers, timeout=timeout, started=started)
        finally:
            _deadline.at = None

    def _post(
        self,
        pool: httpcore.ConnectionPool,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        timeout: float,
        started: float,
    ) -> Answer:
        import httpcore  # noqa: PLC0415 - already imported by _pool; a dict lookup

        # httpcore adds Host and Content-Length itself.
        timeouts = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        try:
            with pool.stream(
                "POST",
                url,
                headers=list(headers.items()),
                content=body,
                extensions={"timeout": timeouts},
            ) as response:
                chunks: list[bytes] = []
                size = 0
                complete = True
                for chunk in response.iter_stream():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES or time.monotonic() - started > timeout:
                        complete = False
                        break
                return Answer(
                    status=response.status,
                    headers={
                        name.decode("latin-1").lower(): value.decode("latin-1")
                        for name, value in response.headers
                    },
                    body=b"".join(chunks)[:MAX_RESPONSE_BYTES],
                    complete=complete,
                )
        except httpcore.TimeoutException as exc:
            raise NetworkError(_describe(exc), timed_out=True) from None
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError) as exc:
            raise NetworkError(_describe(exc)) from None
        except (httpcore.UnsupportedProtocol, OSError) as exc:
            raise NetworkError(_describe(exc)) from None
        except Exception as exc:
            # Not a network failure httpcore knows (a closed pool, an encoding problem):
            # its text may quote request headers, so only its type is passed on.
            raise NetworkError(f"{type(exc).__name__} while sending") from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def proxy_for(url: str, environ: Mapping[str, str]) -> str | None:
    """The proxy a request to ``url`` goes through, from the environment, or None."""
    from urllib.parse import urlsplit  # noqa: PLC0415 - with the pool, not at import

    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if _bypassed(host, _env(environ, "NO_PROXY")):
        return None
    return _env(environ, f"{parts.scheme.upper()}_PROXY") or _env(environ, "ALL_PROXY") or None


def _env(environ: Mapping[str, str], name: str) -> str:
    return (environ.get(name) or environ.get(name.lower()) or "").strip()


def _bypassed(host: str, no_proxy: str) -> bool:
    for entry in no_proxy.split(","):
        name = entry.strip().lower().lstrip(".")
        if name == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False


def ssl_context(environ: Mapping[str, str]) -> ssl.SSLContext:
    """The TLS context for the CA certificates ``environ`` names, built once per process
    and shared by every pool of every tracker: loading a CA bundle is most of what
    building a pool costs (certifi's: about 15 ms)."""
    cafile = environ.get("SSL_CERT_FILE") or None
    capath = environ.get("SSL_CERT_DIR") or None
    key = (cafile, capath)
    context = _ssl_contexts.get(key)
    if context is None:
        with _ssl_lock:
            context = _ssl_contexts.get(key)
            if context is None:
                context = _ssl_contexts[key] = _new_ssl_context(cafile, capath)
    return context


def _new_ssl_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    import ssl  # noqa: PLC0415 - with httpcore

    if cafile is None and capath is None:
        import certifi  # noqa: PLC0415 - httpcore's own dependency

        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


_ssl_contexts: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_ssl_lock = threading.Lock()


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


def _deadline_backend() -> httpcore.NetworkBackend:
    """httpcore's synchronous backend, each socket operation clipped to the deadline."""
    import httpcore  # noqa: PLC0415 - with the pool

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

    return DeadlineBackend(httpcore.SyncBackend())

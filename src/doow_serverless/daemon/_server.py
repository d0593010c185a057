"""The daemon's listening sockets: a thread per connection, and a stop that loses nothing.

Stopping closes the listening socket first (no new connection is accepted), then ends
every connection that is idle between two requests; a connection busy with a request
finishes it, answers (``Connection: close``), and ends. Whatever a client sent that was
not answered, it still has and sends again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import socketserver
import stat
import sys
import threading
from typing import Any

from .._core.constants import LOGGER_NAME

logger = logging.getLogger(LOGGER_NAME)

# An idle keep-alive connection (or a stalled one) is closed after this long.
IDLE_TIMEOUT_S = 60.0
_STOP_POLL_S = 0.5


class Connections:
    """The open connections of one server, and which are busy with a request."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._busy: dict[socket.socket, bool] = {}
        self.stopping = False

    def opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._busy[connection] = False

    def busy(self, connection: socket.socket, busy: bool) -> None:
        with self._lock:
            if connection in self._busy:
                self._busy[connection] = busy
            self._lock.notify_all()

    def closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._busy.pop(connection, None)
            self._lock.notify_all()

    def stop(self, timeout: float) -> bool:
        """End idle connections now, busy ones once answered; False if some are still open
        after ``timeout`` seconds."""
        with self._lock:
            self.stopping = True
            for connection, busy in self._busy.items():
                if not busy:
                    _shut(connection)
            done = self._lock.wait_for(lambda: not self._busy, timeout)
            for connection in self._busy:  # stuck: end them too
                _shut(connection)
            return done


def _shut(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class ServerMixin:
    """For a ``socketserver`` server: tracks its connections; :meth:`stop` as above."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.connections = Connections()
        self._thread: threading.Thread | None = None
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.opened(request)
        super().process_request(request, client_address)  # type: ignore[misc]

    def shutdown_request(self, request: Any) -> None:
        self.connections.closed(request)
        super().shutdown_request(request)  # type: ignore[misc]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that goes away mid-request is no error of ours; anything else is."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            logger.debug("doow-serverless daemon: a connection ended: %s", error)
        else:
            logger.exception("doow-serverless daemon: unexpected error on a connection")

    def start(self, name: str) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever,  # type: ignore[attr-defined]
            kwargs={"poll_interval": _STOP_POLL_S},
            name=name,
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Accept nothing more; let requests in progress be answered (at most ``timeout``)."""
        self.connections.stopping = True
        self.shutdown()  # type: ignore[attr-defined]
        self.server_close()  # type: ignore[attr-defined]
        return self.connections.stop(timeout)


class TCPServer(ServerMixin, socketserver.ThreadingTCPServer):
    def __init__(self, address: tuple[str, int], handler: type[Any]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    @property
    def address(self) -> str:
        host, port = str(self.server_address[0]), int(self.server_address[1])
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class UnixServer(ServerMixin, socketserver.ThreadingUnixStreamServer):
    """On a Unix socket file: readable and writable by the owner and its group."""

    def __init__(self, path: str, handler: type[Any]) -> None:
        _remove_stale_socket(path)
        super().__init__(path, handler)
        os.chmod(path, 0o660)

    @property
    def address(self) -> str:
        return f"unix:{self.server_address}"

    def server_close(self) -> None:
        super().server_close()
        with contextlib.suppress(OSError):
            os.unlink(str(self.server_address))


def _remove_stale_socket(path: str) -> None:
    """A socket file nobody listens on any more (a killed daemon's) is removed; a live one
    makes the bind fail, as it should."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return
    except OSError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
    finally:
        probe.close()

"""The collector's HTTP server: the accept loop, and every open connection's bookkeeping."""

from __future__ import annotations

import contextlib
import selectors
import socket
import socketserver
import sys
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from ._handler import CollectorHandler
from ._http import logger
from ._state import CollectorState

_CLOSE_WAIT_SECONDS = 2.0


class CollectorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    # Bounds handle_request()'s own wait, should a pending connection vanish before accept.
    timeout = 0.5

    def __init__(self, address: tuple[str, int], state: CollectorState) -> None:
        self.state = state
        self._connections: set[socket.socket] = set()
        self._connections_changed = threading.Condition()
        self._stop_requested = threading.Event()
        self._loop_done = threading.Event()
        self._wake_reader, self._wake_writer = socket.socketpair()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        try:
            super().__init__(address, CollectorHandler)
        except BaseException:
            self._wake_reader.close()
            self._wake_writer.close()
            raise

    def serve(self) -> None:
        """Accept connections until :meth:`request_stop`.

        Unlike serve_forever(), which notices a shutdown only at its next poll, this loop
        is woken at once, so stopping a collector costs no fixed delay.
        """
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.socket, selectors.EVENT_READ)
                selector.register(self._wake_reader, selectors.EVENT_READ)
                while not self._stop_requested.is_set():
                    ready = selector.select()
                    if not self._stop_requested.is_set() and any(
                        key.fileobj is self.socket for key, _ in ready
                    ):
                        self.handle_request()
        finally:
            self._loop_done.set()

    def request_stop(self, timeout: float) -> None:
        """Stop accepting connections; wait, bounded, for the accept loop to end."""
        self._stop_requested.set()
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")
        self._loop_done.wait(timeout)

    def server_close(self) -> None:
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name = host
        self.server_port = port

    def process_request(self, request: Any, client_address: Any) -> None:
        # Tracked here, in the accept loop, so that stop() knows every accepted connection.
        with self._connections_changed:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self._connections_changed:
            self._connections.discard(request)
            self._connections_changed.notify_all()

    def close_connections(self) -> None:
        """End every open connection (idle keep-alive ones too) and wait, bounded, for them."""
        with self._connections_changed:
            for connection in list(self._connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections_changed.wait_for(
                lambda: not self._connections, timeout=_CLOSE_WAIT_SECONDS
            )

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        # The client reset or timed out, or a "reset" fault closed the socket under the
        # handler (http.server then flushes a closed file).
        if isinstance(error, OSError) or (
            isinstance(error, ValueError) and "closed file" in str(error)
        ):
            logger.debug("connection from %s ended: %s", client_address[0], sys.exc_info()[1])
        else:
            logger.exception("unexpected error on a connection from %s", client_address[0])

"""The log egress of a Managed Instances environment: each worker's output apart.

There, the runtime client's workers connect their stdout and stderr to a socket the
platform provides (``_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET``), so the platform reads
each worker's output on its own: the lines of two workers never mix, as they would in one
pipe (a write of more than the pipe's atomic size may be split by another process's).
The harness plays that socket: each connection's lines are read as a process's pipe is.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable

from .._child_output import start_pumping

# What awslambdaric reads to find the socket.
SOCKET_ENV = "_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET"


class LogSocket:
    """A Unix socket whose every connection is a stream of log lines."""

    def __init__(self, lines: list[str], on_line: Callable[[str], object] | None) -> None:
        # A short directory: a Unix socket's path holds about 100 bytes at most.
        base = "/tmp" if os.path.isdir("/tmp") else None  # noqa: S108
        self._directory = tempfile.mkdtemp(prefix="lambda-logs-", dir=base)
        self.path = os.path.join(self._directory, "logs.sock")
        self._lines = lines
        self._on_line = on_line
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(64)
        threading.Thread(target=self._accept, name="lambda-log-socket", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            stream = connection.makefile("rb")
            connection.close()  # the file keeps the socket open until the worker closes it
            start_pumping(stream, self._lines, self._on_line, "lambda-worker-output")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        shutil.rmtree(self._directory, ignore_errors=True)

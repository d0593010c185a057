"""The daemon's life: start, serve, reload on SIGHUP, stop on SIGTERM or SIGINT.

Start: the pidfile, then the spool (what an earlier run left in it is forwarded first),
then the inputs and the forwarder. Signals are taken by the main thread alone, with
``sigtimedwait`` (blocked everywhere else), so no handler ever runs in the middle of
other code. A reload reads the settings again; settings that cannot be used are
reported and the running ones stay. A stop closes the inputs (requests in progress are
answered), gives the forwarder the grace period for a last flush, and leaves the rest in
the spool. The exit status is 0 when nothing accepted was lost (what is left in the
spool is not lost: the next start forwards it), 1 when something was, 2 when the daemon
could not start.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping
from typing import Any

from .._core.config import key_hint, redact
from .._core.constants import LOGGER_NAME
from .._core.deadline import Deadline
from .._core.errors import DoowError
from .._core.events import Attribution
from .._delivery.outbox import Outbox
from .._durability.spool import Spool, SpoolUnavailable
from ._follow import Follower
from ._forward import Forwarder
from ._http import Access, Ingest, IngestHandler
from ._intake import Intake
from ._pidfile import Pidfile, PidfileError
from ._queue import HeldQueue
from ._server import ServerMixin, TCPServer, UnixServer
from ._settings import Flags, Settings, SettingsError, is_loopback_host, load
from ._tcp_lines import LineInput, LinesHandler

logger = logging.getLogger(LOGGER_NAME)

SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT}
# Of the grace period, what waiting for requests in progress may take at most.
INPUTS_STOP_S = 5.0

EXIT_OK = 0
EXIT_LOST = 1
EXIT_NOT_STARTED = 2


class Daemon:
    def __init__(
        self, flags: Flags, pidfile: str | None, environ: Mapping[str, str] | None = None
    ) -> None:
        self._flags = flags
        self._pidfile = None if pidfile is None else Pidfile(pidfile)
        self._environ = os.environ if environ is None else environ
        self._settings: Settings | None = None
        self._servers: list[ServerMixin] = []
        self._followers: list[Follower] = []
        self._keys: set[str] = set()
        self._last_error: str | None = None
        self._stopping = False

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; the exit status."""
        try:
            settings = self._settings = self._load()
        except SettingsError as exc:
            logger.error("doow-serverless daemon: cannot start: %s", exc)
            return EXIT_NOT_STARTED
        if self._pidfile is not None:
            try:
                self._pidfile.acquire()
            except PidfileError as exc:
                logger.error("doow-serverless daemon: cannot start: %s", exc)
                return EXIT_NOT_STARTED
        try:
            # Before any thread starts, so that every thread inherits the mask.
            signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
            return self._serve(settings)
        finally:
            if self._pidfile is not None:
                self._pidfile.release()

    def _serve(self, settings: Settings) -> int:
        spool = Spool(settings.spool_dir, settings.spool_max_bytes, durable=True)
        try:
            left = spool.open_lazily()
        except SpoolUnavailable as exc:
            logger.error("doow-serverless daemon: cannot start: %s", exc)
            return EXIT_NOT_STARTED
        for path in spool.set_aside:
            logger.warning("doow-serverless daemon: %s is not a batch; set aside", path)
        self._outbox = Outbox(settings.tracker.max_queue_size)
        self._spool = spool
        self._queue = HeldQueue(self._outbox, spool, settings.tracker.max_queue_size)
        self._forwarder = Forwarder(
            settings.tracker,
            outbox=self._outbox,
            spool=spool,
            queue=self._queue,
            report=self._report,
        )
        self._intake = Intake(spool, self._queue, self._forwarder.wake)
        if left:
            logger.info(
                "doow-serverless daemon: %d batch(es) an earlier run left in %s are "
                "forwarded first",
                len(left),
                settings.spool_dir,
            )
            self._queue.adopt(left)
        try:
            self._open_inputs(settings)
        except OSError as exc:
            logger.error("doow-serverless daemon: cannot start: %s", exc)
            self._close_inputs(Deadline(0))
            spool.close()
            return EXIT_NOT_STARTED
        self._forwarder.start()
        self._ready(settings)
        self._wait_for_stop()
        return self._stop()

    # -- inputs ------------------------------------------------------------------------

    def _open_inputs(self, settings: Settings) -> None:
        self._ingest = Ingest(self._intake, self.status)
        self._ingest.access = Access(settings.token)
        servers: list[tuple[str, ServerMixin]] = []
        if settings.listen is not None:
            servers.append(("http", TCPServer(settings.listen, IngestHandler)))
        if settings.socket is not None:
            servers.append(("http-unix", UnixServer(settings.socket, IngestHandler)))
        if settings.lines_port is not None:
            lines = TCPServer(("127.0.0.1", settings.lines_port), LinesHandler)
            servers.append(("lines", lines))
        for name, server in servers:
            server.ingest = self._ingest  # type: ignore[attr-defined]
            server.lines = LineInput(self._intake, self._attribution)  # type: ignore[attr-defined]
            server.start(f"doow-daemon-{name}")
            self._servers.append(server)
        for path in settings.follow:
            follower = Follower(path, settings.spool_dir, self._intake, self._attribution)
            follower.start()
            self._followers.append(follower)

    def _attribution(self) -> Attribution | None:
        assert self._settings is not None
        return self._settings.tracker.attribution

    def _close_inputs(self, deadline: Deadline) -> None:
        for server in self._servers:
            if not server.stop(min(deadline.remaining(), INPUTS_STOP_S)):
                logger.warning(
                    "doow-serverless daemon: a request on %s was still in progress at the stop",
                    server.address,  # type: ignore[attr-defined]
                )
        for follower in self._followers:
            follower.stop(min(deadline.remaining(), INPUTS_STOP_S))

    # -- signals -------------------------------------------------------------------------

    def _wait_for_stop(self) -> None:
        while True:
            received = signal.sigtimedwait(SIGNALS, 1.0)
            if received is None:
                continue
            if received.si_signo == signal.SIGHUP:
                self._reload()
            else:
                logger.info(
                    "doow-serverless daemon: %s received; stopping",
                    signal.Signals(received.si_signo).name,
                )
                return

    def _reload(self) -> None:
        current = self._settings
        assert current is not None
        try:
            new = self._load()
        except SettingsError as exc:
            logger.error(
                "doow-serverless daemon: the new settings cannot be used (%s); the running "
                "ones stay",
                exc,
            )
            return
        if current.listen is not None and not is_loopback_host(current.listen[0]) and not new.token:
            logger.error(
                "doow-serverless daemon: the new settings have no local token while the "
                "daemon listens on %s; the running ones stay",
                current.listen[0],
            )
            return
        later = current.changed_until_restart(new)
        self._settings = current._replace(tracker=new.tracker, token=new.token)
        self._forwarder.reload(new.tracker)
        self._ingest.access = Access(new.token)
        logger.info(
            "doow-serverless daemon: settings reloaded: forwarding to %s with key %s",
            new.tracker.endpoint,
            key_hint(new.tracker.api_key),
        )
        if later:
            logger.warning(
                "doow-serverless daemon: %s changed; that takes a restart", ", ".join(later)
            )

    def _load(self) -> Settings:
        settings = load(self._flags, self._environ)
        for warning in settings.tracker.warnings:
            logger.warning("doow-serverless daemon: %s", warning)
        if settings.tracker.api_key:
            self._keys.add(settings.tracker.api_key)
        if not settings.tracker.enabled:
            logger.warning(
                "doow-serverless daemon: sending is disabled: batches are accepted and kept "
                "in the spool, not forwarded"
            )
        return settings

    # -- stopping ------------------------------------------------------------------------

    def _stop(self) -> int:
        settings = self._settings
        assert settings is not None
        self._stopping = True
        deadline = Deadline(settings.grace)
        self._close_inputs(deadline)
        finished = self._forwarder.stop(deadline.remaining())
        held = self._spool.files
        self._spool.close()
        counts = self._intake.counts()
        if not finished:
            logger.warning(
                "doow-serverless daemon: forwarding did not end within the grace period (%.1fs)",
                settings.grace,
            )
        logger.info(
            "doow-serverless daemon: stopped: %d event(s) accepted, %d forwarded; %d "
            "batch file(s) kept in %s for the next start",
            counts.accepted,
            self._outbox.counts().delivered,
            held,
            settings.spool_dir,
        )
        if self._forwarder.lost:
            logger.error("doow-serverless daemon: %d event(s) lost", self._forwarder.lost)
            return EXIT_LOST
        return EXIT_OK

    # -- reporting -----------------------------------------------------------------------

    def _ready(self, settings: Settings) -> None:
        where = [server.address for server in self._servers]  # type: ignore[attr-defined]
        where += [f"file:{follower.path}" for follower in self._followers]
        logger.info(
            "doow-serverless daemon: pid %d listening on %s; forwarding to %s with key %s",
            os.getpid(),
            ", ".join(where),
            settings.tracker.endpoint,
            key_hint(settings.tracker.api_key),
        )

    def _report(self, error: DoowError, level: int) -> None:
        text = str(error)
        for key in self._keys:
            text = redact(text, key)
        self._last_error = text
        logger.log(level, "doow-serverless daemon: %s", text)

    def status(self) -> dict[str, Any]:
        intake = self._intake.counts()
        outbox = self._outbox.counts()
        return {
            "status": "stopping" if self._stopping else "ok",
            "accepted": intake.accepted,
            "rejected": intake.rejected,
            "refused_batches": intake.refused,
            "forwarded": outbox.delivered,
            "refused_upstream": outbox.rejected,
            "held_in_memory": outbox.pending,
            "batches_on_disk_only": self._queue.on_disk,
            "spool_files": self._spool.files,
            "spool_bytes": self._spool.bytes_used,
            "spool_max_bytes": self._spool.max_bytes,
            "last_error": self._last_error,
        }

"""The :class:`Collector`: a local Doow-compatible ingest server, in-process or foreground."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from ._auth import KeyCheck
from ._faults import parse_plan
from ._server import CollectorHTTPServer
from ._state import DEFAULT_MAX_BODY_BYTES, MAX_EVENTS_LIMIT, CollectorState

_STOP_WAIT_S = 5.0
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104


class Collector:
    """A small ingest server speaking Doow's ``POST /telemetry/events`` contract.

    ``db_path=None`` keeps events in memory; ``api_keys=None`` is dev mode (any ``dk_``
    key). ``start()`` serves on a background thread; ``serve_forever()`` serves in the
    foreground until SIGINT or SIGTERM.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        db_path: str | Path | None = None,
        api_keys: Iterable[str] | None = None,
        idle_timeout: float = 5.0,
        reject_licenses: Iterable[str] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be greater than 0")
        if max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be greater than 0")
        self._host = host
        self._requested_port = port
        self._db_path = db_path
        self._keys = KeyCheck(api_keys)  # refuses a key that is not a dk_ key, now
        self._idle_timeout = idle_timeout
        self._reject_licenses = tuple(reject_licenses)
        self._max_body_bytes = max_body_bytes
        self._state: CollectorState | None = None
        self._server: CollectorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()
        self._stopped = False

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> Collector:
        """Bind and serve on a background thread. A collector starts once."""
        with self._lifecycle:
            if self._state is not None or self._stopped:
                raise RuntimeError("a Collector can be started only once")
            state = CollectorState.open(
                self._db_path,
                self._keys,
                self._idle_timeout,
                self._max_body_bytes,
                self._reject_licenses,
            )
            try:
                server = CollectorHTTPServer((self._host, self._requested_port), state)
            except BaseException:
                state.store.close()
                raise
            self._state, self._server = state, server
            self._thread = threading.Thread(
                target=server.serve, name=f"doow-collector:{self.port}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end open and hanging connections, close the store. Idempotent."""
        with self._lifecycle:
            state, server, thread = self._state, self._server, self._thread
            if self._stopped or state is None or server is None or thread is None:
                self._stopped = True
                return
            self._stopped = True
            state.stopping.set()
            state.faults.release_all()
            server.request_stop(timeout=_STOP_WAIT_S)
            server.close_connections()
            server.server_close()
            thread.join(timeout=_STOP_WAIT_S)
            state.store.close()

    def serve_forever(self) -> None:
        """Serve in the foreground until SIGINT or SIGTERM, then stop. Main thread only."""
        received = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            received.set()

        previous = {
            signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            if self._state is None:
                self.start()
            while not received.wait(0.5):
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.stop()

    def __enter__(self) -> Collector:
        if self._state is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- where ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._running_server().server_address[1])

    @property
    def host(self) -> str:
        return self._host

    @property
    def url(self) -> str:
        """Where a client on this machine reaches the collector (a wildcard bind via loopback)."""
        host = _WILDCARDS.get(self._host, self._host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def dev_mode(self) -> bool:
        return self._keys.dev_mode

    # -- control -------------------------------------------------------------------------

    def set_faults(self, plan: dict[str, Any]) -> None:
        """Switch to a fault plan (raises FaultPlanError, a ValueError, naming the problem)."""
        self._running_state().faults.set(parse_plan(plan))

    def clear_faults(self) -> None:
        """Back to normal processing; requests hanging under the old plan are released."""
        self._running_state().faults.set(None)

    def faults(self) -> dict[str, Any]:
        return self._running_state().faults.describe()

    def stats(self) -> dict[str, Any]:
        return self._running_state().stats()

    def events(
        self, metric: str | None = None, license_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Stored events, newest first (the same objects ``GET /events`` answers)."""
        if not 1 <= limit <= MAX_EVENTS_LIMIT:
            raise ValueError(f"limit must be from 1 to {MAX_EVENTS_LIMIT}")
        return self._running_state().store.events(metric, license_id, limit)

    def refusals(self, limit: int = 100) -> list[dict[str, Any]]:
        """Events refused for good (207), newest first, with whether that 207 was sent."""
        if not 1 <= limit <= MAX_EVENTS_LIMIT:
            raise ValueError(f"limit must be from 1 to {MAX_EVENTS_LIMIT}")
        return self._running_state().store.refusals(limit)

    def reset(self) -> None:
        """Forget stored events and zero the counters; the fault plan stays."""
        self._running_state().reset()

    def _running_state(self) -> CollectorState:
        if self._state is None or self._stopped:
            raise RuntimeError("the collector is not running; call start() first")
        return self._state

    def _running_server(self) -> CollectorHTTPServer:
        if self._server is None:
            raise RuntimeError("the collector is not running; call start() first")
        return self._server

"""One Vercel function instance on this machine: ``vercel_runtime.vc_init`` in a subprocess.

The platform side is played here, as Vercel's does it for the runtime's IPC mode:

- a Unix socket at ``VERCEL_IPC_PATH``; the runtime connects to it while it starts and
  sends NUL-separated JSON messages: ``server-started`` (with the HTTP port), then per
  request ``handler-started``, ``log`` and ``end``. ``end`` comes after the work given to
  ``wait_until`` is done: it is when the invocation is over;
- plain HTTP to that port, with ``x-vercel-id`` and the ``x-vercel-internal-*`` headers
  (invocation id, request id, span and trace ids, and the deadline in RFC 3339);
- the deadline: an invocation that has not ended by then is a timeout, and the instance
  is killed (the next request starts a new one, a cold start).

The process is started on the first request and kept between requests (a warm instance).
:class:`VercelFunction` serves a source file as the builder would wrap it;
:class:`BuiltVercelFunction` serves a ``.func`` folder exactly as ``vercel build`` wrote it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import http.client
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

from .._child_output import MAX_OUTPUT_LINES, start_pumping
from ._build import BuildError, FunctionBuild, read_build, runtime_of

_Function = TypeVar("_Function", bound="VercelFunction")

DEFAULT_MAX_DURATION_S = 10.0
DEFAULT_START_TIMEOUT_S = 30.0
# How long a dead instance's output and IPC messages may take to be read to their end.
_DRAIN_TIMEOUT_S = 5.0

# What Vercel's Python builder generates as the function's entry: the runtime's module.
_STUB = "import vercel_runtime.vc_init"
# What the platform does with a built function: the folder first on sys.path (as Lambda's
# task root), then the handler's module imported (in IPC mode, the import serves).
_IMPORT_HANDLER = (
    "import importlib, sys; sys.path.insert(0, sys.argv[1]); importlib.import_module(sys.argv[2])"
)
# Passed through from this process, so the interpreter and its tools keep working.
_PASSED_THROUGH = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "LD_LIBRARY_PATH", "SYSTEMROOT")


@dataclass(frozen=True)
class VercelResponse:
    """One request as the platform saw it. Times are ``time.monotonic()`` values."""

    status: int | None  # None: no HTTP answer (timeout or crash)
    headers: dict[str, str]
    body: bytes
    vercel_id: str
    invocation_id: str
    request_id: int
    cold_start: bool
    started_at: float
    responded_at: float | None  # the whole body was read
    ended_at: float | None  # the runtime reported "end" (None: it did not, in time)
    deadline_at: float
    timed_out: bool
    error: str | None = None

    @property
    def ok(self) -> bool:
        """An HTTP answer, and the invocation ended before its deadline."""
        return self.status is not None and self.ended_at is not None and not self.timed_out

    @property
    def duration(self) -> float | None:
        """Seconds from sending the request to having the whole response."""
        return None if self.responded_at is None else self.responded_at - self.started_at

    @property
    def after_response(self) -> float | None:
        """Seconds the invocation went on after the response (its wait_until work)."""
        if self.responded_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.responded_at

    @property
    def margin(self) -> float | None:
        """Seconds from the invocation's end to its deadline (negative: after it)."""
        return None if self.ended_at is None else self.deadline_at - self.ended_at

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class _Launch(NamedTuple):
    """How an instance's process is started (the platform's variables are added to it)."""

    argv: list[str]
    cwd: Path
    environment: dict[str, str]


@dataclass
class _Log:
    invocation_id: str
    request_id: int
    level: str
    message: str


@dataclass
class _Instance:
    """One runtime process and the IPC connection that only it uses."""

    process: subprocess.Popen[bytes]
    folder: str
    listener: socket.socket
    connection: socket.socket | None = None
    port: int | None = None
    fatal: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    exited: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)
    ends: dict[tuple[str, int], float] = field(default_factory=dict)
    handler_started: dict[tuple[str, int], float] = field(default_factory=dict)
    # The threads reading its output and its IPC messages.
    readers: list[threading.Thread] = field(default_factory=list)

    def kill(self) -> None:
        if not self.exited.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10.0)
        self.exited.set()
        # Everything the process wrote before it died is read before its sockets close:
        # the platform keeps a dead instance's logs (its output and its IPC messages
        # reach EOF once the process is gone).
        for reader in self.readers:
            if reader is not threading.current_thread():
                reader.join(_DRAIN_TIMEOUT_S)
        self.close()

    def terminate(self, grace: float) -> None:
        if not self.exited.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        self.kill()

    def close(self) -> None:
        for sock in (self.connection, self.listener):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        with self.changed:
            self.changed.notify_all()

    def wait_end(self, key: tuple[str, int], until: float) -> float | None:
        with self.changed:
            while key not in self.ends:
                left = until - time.monotonic()
                if left <= 0 or self.exited.is_set():
                    break
                self.changed.wait(left)
            return self.ends.get(key)


class VercelFunction:
    """A Vercel Python function served by the real runtime; requests may run concurrently.

    ``entrypoint`` is the file Vercel would deploy (``api/index.py``), relative to
    ``project_dir``; ``variable`` is ``"app"`` or ``"handler"`` (found in the file when not
    given); ``python`` an interpreter with ``vercel-runtime`` installed. ``max_duration``
    is the function's limit: each request's deadline, unless a request gives its own.
    ``kills`` counts the instances ended at a deadline, ``cold_starts`` the processes
    started; ``logs`` holds what the function logged through the runtime.
    """

    def __init__(
        self,
        entrypoint: str,
        *,
        project_dir: str | Path,
        python: str | Path,
        variable: str | None = None,
        max_duration: float = DEFAULT_MAX_DURATION_S,
        environment: Mapping[str, str] | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT_S,
        on_output: Callable[[str], object] | None = None,
    ) -> None:
        self.project_dir = Path(project_dir).resolve()
        self.entry_path = (self.project_dir / entrypoint).resolve()
        if not self.entry_path.is_file():
            raise FileNotFoundError(f"no entrypoint {entrypoint!r} in {self.project_dir}")
        self.entrypoint = entrypoint
        self.variable = variable or _find_variable(self.entry_path)
        self._setup(python, max_duration, environment, start_timeout, on_output)

    def _setup(
        self,
        python: str | Path,
        max_duration: float,
        environment: Mapping[str, str] | None,
        start_timeout: float,
        on_output: Callable[[str], object] | None,
    ) -> None:
        if max_duration <= 0:
            raise ValueError("max_duration must be greater than 0")
        # Absolute (the process runs in another folder), not resolved: a venv's python is a link.
        self.python = os.path.abspath(python) if os.sep in str(python) else str(python)
        self.max_duration = float(max_duration)
        self.environment = dict(environment or {})
        self.start_timeout = start_timeout
        self.on_output = on_output
        self.cold_starts = 0
        self.kills = 0
        self.logs: list[_Log] = []
        self.output: list[str] = []
        self._instance: _Instance | None = None
        self._lock = threading.Lock()
        self._request_ids = itertools.count(1)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start an instance now (a cold start) rather than at the first request."""
        with self._lock:
            self._running_instance()

    def stop(self, grace: float = 2.0) -> None:
        with self._lock:
            instance, self._instance = self._instance, None
        if instance is not None:
            instance.terminate(grace)

    def __enter__(self: _Function) -> _Function:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        instance = self._instance
        return None if instance is None or instance.exited.is_set() else instance.process.pid

    def log_text(self) -> str:
        """Everything the function wrote: runtime log messages and raw output."""
        return "\n".join([entry.message for entry in self.logs] + self.output)

    # -- requests ------------------------------------------------------------------------

    def request(
        self,
        method: str = "GET",
        path: str = "/",
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        vercel_id: str | None = None,
        deadline_header: bool = True,
    ) -> VercelResponse:
        """Send one request as the platform does; return when the invocation has ended.

        ``deadline`` is seconds from now (default ``max_duration``). If the invocation
        has not ended by then, the instance is killed and the response is a timeout.
        ``deadline_header=False`` leaves out ``x-vercel-internal-deadline`` (as runtimes
        before it had), so the function cannot know its deadline.
        """
        with self._lock:
            cold = self._instance is None or self._instance.exited.is_set()
            instance = self._running_instance()
        limit = self.max_duration if deadline is None else deadline
        started = time.monotonic()
        deadline_at = started + limit
        invocation_id = str(uuid.uuid4())
        request_id = next(self._request_ids)
        vercel_id = vercel_id or _new_vercel_id()
        sent = {
            "host": "localhost",
            "x-forwarded-proto": "https",
            "x-forwarded-host": "localhost",
            "x-vercel-id": vercel_id,
            "x-vercel-internal-invocation-id": invocation_id,
            "x-vercel-internal-request-id": str(request_id),
            "x-vercel-internal-span-id": secrets.token_hex(8),
            "x-vercel-internal-trace-id": secrets.token_hex(16),
            "x-vercel-internal-deadline": _rfc3339(time.time() + limit),
            **(headers or {}),
        }
        if not deadline_header:
            del sent["x-vercel-internal-deadline"]
        status: int | None = None
        answer_headers: dict[str, str] = {}
        data = b""
        responded: float | None = None
        error: str | None = None
        assert instance.port is not None
        connection = http.client.HTTPConnection(
            "127.0.0.1", instance.port, timeout=max(0.05, deadline_at - time.monotonic())
        )
        try:
            connection.request(method, path, body=body, headers=sent)
            answer = connection.getresponse()
            data = answer.read()
            responded = time.monotonic()
            status = answer.status
            answer_headers = {key.lower(): value for key, value in answer.getheaders()}
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
        ended = instance.wait_end((invocation_id, request_id), deadline_at)
        timed_out = ended is None and time.monotonic() >= deadline_at
        if ended is None:
            self._kill(instance, counted=timed_out)
            if error is None:
                error = "the invocation passed its deadline" if timed_out else "crashed"
        return VercelResponse(
            status=status if ended is not None else None,
            headers=answer_headers,
            body=data,
            vercel_id=vercel_id,
            invocation_id=invocation_id,
            request_id=request_id,
            cold_start=cold,
            started_at=started,
            responded_at=responded,
            ended_at=ended,
            deadline_at=deadline_at,
            timed_out=timed_out,
            error=error,
        )

    # -- internals -----------------------------------------------------------------------

    def _launch(self) -> _Launch:
        """The builder's stub: the runtime's module, told where the entrypoint is."""
        module = self.entrypoint.removesuffix(".py").replace("/", ".").replace("\\", ".")
        environment = {
            **self.environment,
            "__VC_HANDLER_ENTRYPOINT": self.entrypoint,
            "__VC_HANDLER_ENTRYPOINT_ABS": str(self.entry_path),
            "__VC_HANDLER_MODULE_NAME": module,
            "__VC_HANDLER_VARIABLE_NAME": self.variable,
        }
        return _Launch([self.python, "-c", _STUB], self.project_dir, environment)

    def _kill(self, instance: _Instance, *, counted: bool) -> None:
        with self._lock:
            if self._instance is instance:
                self._instance = None
            if counted and not instance.exited.is_set():
                self.kills += 1
        instance.kill()

    def _running_instance(self) -> _Instance:
        instance = self._instance
        if instance is not None and not instance.exited.is_set():
            return instance
        instance = self._spawn()
        self._instance = instance
        self.cold_starts += 1
        return instance

    def _spawn(self) -> _Instance:
        folder = tempfile.mkdtemp(prefix="doow-vc-")
        ipc_path = os.path.join(folder, "ipc.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(ipc_path)
        listener.listen(1)
        launch = self._launch()
        environ = {key: os.environ[key] for key in _PASSED_THROUGH if key in os.environ}
        environ.update(launch.environment)
        environ.update(
            {
                "VERCEL": "1",
                "VERCEL_ENV": "development",
                "VERCEL_REGION": "dev1",
                "VERCEL_IPC_PATH": ipc_path,
                "PYTHONUNBUFFERED": "1",
            }
        )
        process = subprocess.Popen(
            launch.argv,
            cwd=launch.cwd,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        instance = _Instance(process=process, folder=folder, listener=listener)
        assert process.stdout is not None
        instance.readers.append(
            start_pumping(process.stdout, self.output, self.on_output, "vercel-output")
        )
        threading.Thread(
            target=self._watch, args=(instance,), name="vercel-process", daemon=True
        ).start()
        try:
            self._await_ready(instance)
        except BaseException:
            instance.kill()
            raise
        return instance

    def _await_ready(self, instance: _Instance) -> None:
        until = time.monotonic() + self.start_timeout
        instance.listener.settimeout(0.1)
        while instance.connection is None:
            if instance.exited.is_set() or time.monotonic() > until:
                raise RuntimeError(self._start_failure(instance, "never connected to the IPC"))
            try:
                connection, _ = instance.listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(None)
            instance.connection = connection
        reader = threading.Thread(
            target=self._read_ipc, args=(instance, instance.connection), daemon=True
        )
        reader.start()
        instance.readers.append(reader)
        left = max(0.0, until - time.monotonic())
        if not instance.ready.wait(left) or instance.port is None:
            raise RuntimeError(self._start_failure(instance, "did not announce its server"))

    def _start_failure(self, instance: _Instance, what: str) -> str:
        instance.ready.wait(0.2)
        reason = instance.fatal or "\n".join(self.output[-20:]) or "(no output)"
        return f"the Vercel runtime {what}: {reason}"

    def _watch(self, instance: _Instance) -> None:
        instance.process.wait()
        instance.exited.set()
        instance.ready.set()
        with instance.changed:
            instance.changed.notify_all()

    def _read_ipc(self, instance: _Instance, connection: socket.socket) -> None:
        pending = b""
        while True:
            try:
                chunk = connection.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            *messages, pending = pending.split(b"\0")
            for raw in messages:
                if raw:
                    self._on_message(instance, raw)
        with instance.changed:
            instance.changed.notify_all()

    def _on_message(self, instance: _Instance, raw: bytes) -> None:
        now = time.monotonic()
        try:
            message = json.loads(raw)
            kind = message.get("type")
            payload = message.get("payload") or {}
        except (ValueError, AttributeError):
            return
        if kind == "server-started":
            instance.port = int(payload["httpPort"])
            instance.ready.set()
            return
        if kind == "unrecoverable-error":
            instance.fatal = str(payload.get("message"))
            instance.ready.set()
            return
        context = payload.get("context") or {}
        key = (str(context.get("invocationId")), int(context.get("requestId") or 0))
        if kind == "log":
            try:
                text = base64.b64decode(payload.get("message", "")).decode("utf-8", "replace")
            except ValueError:
                text = ""
            level = str(payload.get("level") or payload.get("stream") or "")
            if len(self.logs) < MAX_OUTPUT_LINES:
                self.logs.append(_Log(key[0], key[1], level, text.rstrip("\n")))
            if self.on_output is not None:
                self.on_output(text.rstrip("\n"))
        elif kind in ("handler-started", "end"):
            with instance.changed:
                (instance.ends if kind == "end" else instance.handler_started)[key] = now
                instance.changed.notify_all()


class BuiltVercelFunction(VercelFunction):
    """A ``.func`` folder from ``vercel build``, run as the platform runs it.

    The process starts in the folder with the environment of its ``.vc-config.json``
    (``PYTHONPATH=_vendor``) and imports the module of its ``handler``: Vercel's generated
    bootstrap, which loads the runtime and the dependencies vendored in the folder.
    ``python`` must be the interpreter of the config's ``runtime`` (``python3.12``), with
    nothing installed: everything the function imports must come from the folder.
    ``max_duration`` defaults to the config's ``maxDuration``.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        python: str | Path,
        max_duration: float | None = None,
        environment: Mapping[str, str] | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT_S,
        on_output: Callable[[str], object] | None = None,
    ) -> None:
        self.build: FunctionBuild = read_build(folder)
        runtime = runtime_of(python)
        if runtime != self.build.runtime:
            raise BuildError(
                f"{self.build.folder.name} is built for {self.build.runtime}; {python} is {runtime}"
            )
        self.project_dir = self.build.folder
        duration = max_duration or self.build.max_duration or DEFAULT_MAX_DURATION_S
        self._setup(python, duration, environment, start_timeout, on_output)

    def _launch(self) -> _Launch:
        argv = [self.python, "-c", _IMPORT_HANDLER, str(self.build.folder), self.build.module]
        environment = {**self.build.environment, **self.environment}
        return _Launch(argv, self.build.folder, environment)


def _find_variable(entry: Path) -> str:
    """``handler`` when the file defines one at top level, else ``app`` (as Vercel looks)."""
    for line in entry.read_text(encoding="utf-8").splitlines():
        if line.startswith(("class handler", "handler =", "handler=", "def handler")):
            return "handler"
    return "app"


def _rfc3339(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_vercel_id() -> str:
    """Shaped like Vercel's: region::id-milliseconds-hex."""
    return f"dev1::{secrets.token_hex(3)[:5]}-{int(time.time() * 1000)}-{secrets.token_hex(6)}"

"""One Lambda execution environment on this machine: the real runtime client in a subprocess.

``python -m awslambdaric module.handler`` polls a :class:`RuntimeAPIServer` played here.
Like Lambda, the harness starts the process on the first invocation (a cold start), keeps
it between invocations (warm starts), kills it when an invocation passes its deadline
(the runtime client does not enforce the deadline itself) and starts a fresh one for the
next invocation. ``freeze()``/``thaw()`` stop and continue the process between
invocations, as Lambda freezes an idle execution environment.

With ``concurrency=N`` it is a Lambda Managed Instances environment instead: the runtime
client forks N workers (``AWS_LAMBDA_MAX_CONCURRENCY``) that poll the same Runtime API
at once, several invocations run at the same time (``invoke`` may be called from several
threads), nothing is frozen, a deadline kills nothing, each worker's output is read apart
(the platform's log socket, see ``_log_socket``), and ``stop(grace)`` is the environment's
shutdown: SIGTERM to every process, SIGKILL to those left after the grace (the runtime
client's parent ends at SIGTERM at once; its workers still get the grace).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from .._child_output import start_pumping
from ._log_socket import SOCKET_ENV, LogSocket
from ._runtime_api import Invocation, RuntimeAPIServer

# Lambda's limit on the init phase of an on-demand function.
DEFAULT_INIT_TIMEOUT_S = 10.0
# Managed Instances do not kill at the deadline: an answer is awaited this long past it.
MANAGED_LATE_S = 5.0
# What a Managed Instances environment gives its processes between SIGTERM and SIGKILL.
SHUTDOWN_GRACE_S = 2.0
DEFAULT_TIMEOUT_S = 3.0
DEFAULT_MEMORY_MB = 128
# How long a killed process's output may take to be read to its end.
_DRAIN_TIMEOUT_S = 5.0

# Variables Lambda sets itself; a function's configuration cannot override them.
_RESERVED = ("AWS_LAMBDA_RUNTIME_API", "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_EXECUTION_ENV")
# Passed through from this process, so the interpreter and its tools keep working.
_PASSED_THROUGH = ("PATH", "HOME", "SYSTEMROOT", "TMPDIR", "LD_LIBRARY_PATH", "VIRTUAL_ENV")


@dataclass(frozen=True)
class InvocationResult:
    """How one invocation ended, as a caller of Lambda's Invoke API would see it."""

    request_id: str
    # "success": a response; "error": the function's error document; "timeout": killed at
    # the deadline; "init_error": the handler could not be loaded; "crashed": the process
    # exited mid-invocation.
    status: str
    body: bytes
    error_type: str | None
    cold_start: bool
    duration: float | None  # seconds from hand-out to answer
    margin: float | None  # seconds from answer to deadline (negative: after it)
    # Seconds from hand-out until the invocation was complete: answered, and released by
    # every extension registered for INVOKE (what Lambda bills). None: never complete (the
    # environment was killed at the deadline, after the answer if there was one).
    completed: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def payload(self) -> Any:
        """The answer as JSON (the response, or the error document); None if not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


class _Environment:
    """One runtime process and the Runtime API server that only it polls."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        server: RuntimeAPIServer,
        pump: threading.Thread,
        log_socket: LogSocket | None = None,
    ) -> None:
        self.process = process
        self.server = server
        self.pump = pump  # reads the processes' output until the last of them ends
        self.log_socket = log_socket  # Managed Instances: the workers' output
        self.exited = threading.Event()
        self.frozen = False
        self.started = time.monotonic()
        threading.Thread(target=self._watch, name="lambda-process-watch", daemon=True).start()

    def _watch(self) -> None:
        self.process.wait()
        self.exited.set()
        with self.server.changed:
            self.server.changed.notify_all()

    def signal(self, signum: int) -> None:
        if not self.exited.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signum)

    def kill(self) -> None:
        # The whole process group: with Managed Instances, the runtime client's workers
        # too, which outlive a parent that died first.
        self._signal_group(signal.SIGKILL)
        self.exited.wait(10.0)
        give_up = time.monotonic() + 10.0
        while _group_members(self.process.pid) and time.monotonic() < give_up:
            time.sleep(0.01)
        # Everything they wrote is in ``output`` once this returns, as in an export.
        self.pump.join(_DRAIN_TIMEOUT_S)
        self.server.stop()
        if self.log_socket is not None:
            self.log_socket.close()

    def terminate(self, grace: float) -> None:
        """SIGTERM to every process, as a shutdown does; SIGKILL to those still there after
        ``grace`` (the runtime client's parent may end at once: its workers get the grace)."""
        self._signal_group(signal.SIGTERM)
        give_up = time.monotonic() + grace
        while _group_members(self.process.pid) and time.monotonic() < give_up:
            time.sleep(0.01)
        self.kill()

    def _signal_group(self, signum: int) -> None:
        if _group_members(self.process.pid):  # never a group whose id was reused
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)


def _group_members(group: int) -> list[int]:
    """The live (not zombie) processes of a process group."""
    members = []
    for entry in os.listdir("/proc"):
        fields = _stat_fields(entry)
        if fields is not None and int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry))
    return members


def _stat_fields(pid: str) -> list[str] | None:
    """``/proc/PID/stat`` from the state on (state, ppid, pgrp, ...), or None."""
    if not pid.isdigit():
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


class LocalFunction:
    """A Lambda function run locally by the real runtime client; one invocation at a time.

    ``kills`` counts the invocations the harness had to end at their deadline, and
    ``cold_starts`` the processes started. ``output`` holds the function's log lines.
    """

    def __init__(
        self,
        handler: str,
        *,
        code_dir: str | Path,
        timeout: float = DEFAULT_TIMEOUT_S,
        memory_size: int = DEFAULT_MEMORY_MB,
        environment: Mapping[str, str] | None = None,
        function_name: str = "local-function",
        runtime: str | None = None,
        python: str | None = None,
        region: str = "us-east-1",
        init_timeout: float = DEFAULT_INIT_TIMEOUT_S,
        on_output: Callable[[str], object] | None = None,
        concurrency: int | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be greater than 0 seconds")
        if concurrency is not None and concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        # Lambda Managed Instances: this many workers, several invocations at once.
        self.concurrency = concurrency
        self.handler = handler
        self.code_dir = Path(code_dir).resolve()
        self.timeout = float(timeout)
        self.memory_size = memory_size
        self.environment = dict(environment or {})
        self.function_name = function_name
        self.runtime = runtime or f"python{sys.version_info.major}.{sys.version_info.minor}"
        self.python = python or sys.executable
        self.region = region
        self.init_timeout = init_timeout
        self._on_output = on_output
        self.output: list[str] = []
        self.kills = 0
        self.cold_starts = 0
        self._env: _Environment | None = None
        self._lock = threading.Lock()

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:000000000000:function:{self.function_name}"

    @property
    def pid(self) -> int | None:
        env = self._env
        return None if env is None or env.exited.is_set() else env.process.pid

    @property
    def managed(self) -> bool:
        return self.concurrency is not None

    def worker_pids(self) -> list[int]:
        """With Managed Instances, the runtime client's live worker processes (its
        children; a killed worker the parent has not reaped yet is not one)."""
        parent = self.pid
        if parent is None:
            return []
        workers = []
        for entry in os.listdir("/proc"):
            fields = _stat_fields(entry)
            if fields is not None and int(fields[1]) == parent and fields[0] != "Z":
                workers.append(int(entry))
        return sorted(workers)

    # -- invoking ---------------------------------------------------------------------

    def invoke(
        self,
        event: object = None,
        *,
        request_id: str | None = None,
        timeout: float | None = None,
    ) -> InvocationResult:
        """Invoke once and wait for the answer, or kill the process at the deadline.

        ``event`` is JSON-encoded unless it is ``bytes``. ``request_id`` defaults to a
        fresh one; passing the same one twice is how Lambda retries an invocation.
        """
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        invocation = Invocation(
            event=body,
            timeout=self.timeout if timeout is None else float(timeout),
            request_id=request_id or str(uuid.uuid4()),
            function_arn=self.function_arn,
        )
        if self.managed:
            with self._lock:
                cold = self._env is None
                env = self._env or self._start()
                env.server.enqueue(invocation)
            if not self._await_dispatch(env, invocation):
                with self._lock:
                    return self._init_failed(env, invocation, cold)
            return self._await_answer(env, invocation, cold)
        with self._lock:
            cold = self._env is None
            env = self._env or self._start()
            if env.frozen:
                self._set_frozen(env, False)  # Lambda thaws the environment to invoke it
            env.server.enqueue(invocation)
            if not self._await_dispatch(env, invocation):
                return self._init_failed(env, invocation, cold)
            return self._await_answer(env, invocation, cold)

    def _ended(self, env: _Environment) -> bool:
        """The environment is over: its process exited; with Managed Instances, the harness
        ended it (the runtime client's parent may end at SIGTERM at once: its workers, in
        their grace, may still answer, and are not to be killed for it)."""
        return env.server.stopping.is_set() if self.managed else env.exited.is_set()

    def _await_dispatch(self, env: _Environment, invocation: Invocation) -> bool:
        server = env.server
        with server.changed:
            server.changed.wait_for(
                lambda: (
                    invocation.dispatched_monotonic is not None
                    or self._ended(env)
                    or server.init_error is not None
                ),
                timeout=self.init_timeout,
            )
            return invocation.dispatched_monotonic is not None

    def _init_failed(
        self, env: _Environment, invocation: Invocation, cold: bool
    ) -> InvocationResult:
        init_error = env.server.init_error
        if self.managed and env.server.stopping.is_set():  # ended while it was queued
            init_error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": "the environment ended before the invocation was handed out",
            }
        else:
            self._discard(env)
        if init_error is None:
            init_error = {
                "errorType": "Runtime.ExitError" if env.exited.is_set() else "Runtime.InitTimeout",
                "errorMessage": "the runtime did not ask for the invocation",
            }
        return InvocationResult(
            request_id=invocation.request_id,
            status="init_error",
            body=json.dumps(init_error).encode(),
            error_type=str(init_error.get("errorType") or "Runtime.Unknown"),
            cold_start=cold,
            duration=None,
            margin=None,
        )

    def _await_answer(
        self, env: _Environment, invocation: Invocation, cold: bool
    ) -> InvocationResult:
        server = env.server
        deadline = invocation.deadline_monotonic
        assert deadline is not None
        assert invocation.dispatched_monotonic is not None
        # Managed Instances kill nothing at the deadline: a late answer is still awaited.
        late = MANAGED_LATE_S if self.managed else 0.0
        with server.changed:
            server.changed.wait_for(
                lambda: invocation.closed or self._ended(env),
                timeout=max(deadline + late - time.monotonic(), 0.0),
            )
            # Closed under the lock: an answer that arrives from now on is refused.
            invocation.closed = True
            outcome = invocation.outcome
        if outcome is None and self.managed:
            # Its worker died, the handler never returned, or the environment was ended
            # (stop() ends its processes): the others are not this invocation's to kill.
            if env.server.stopping.is_set():
                error_type, message = "Runtime.ExitError", "the environment ended"
            else:
                error_type, message = "Runtime.WorkerExited", "no answer"
            return InvocationResult(
                request_id=invocation.request_id,
                status="crashed",
                body=json.dumps({"errorMessage": message, "errorType": error_type}).encode(),
                error_type=error_type,
                cold_start=cold,
                duration=time.monotonic() - invocation.dispatched_monotonic,
                margin=None,
            )
        if outcome is None:
            if env.exited.is_set():
                status, error_type = "crashed", "Runtime.ExitError"
                message = f"the runtime exited with {env.process.returncode}"
            else:
                self.kills += 1
                status, error_type = "timeout", "Sandbox.Timedout"
                message = f"Task timed out after {invocation.timeout:.2f} seconds"
            self._discard(env)
            return InvocationResult(
                request_id=invocation.request_id,
                status=status,
                body=json.dumps({"errorMessage": message, "errorType": error_type}).encode(),
                error_type=error_type,
                cold_start=cold,
                duration=time.monotonic() - invocation.dispatched_monotonic,
                margin=None,
            )
        answered = invocation.answered_monotonic
        assert answered is not None
        answer_type = invocation.error_type
        if outcome == "error" and answer_type is None:
            answer_type = _error_type(invocation.body)
        completed = (
            answered - invocation.dispatched_monotonic
            if self.managed  # no extension may hold an invocation there
            else self._await_completion(env, invocation, deadline)
        )
        return InvocationResult(
            request_id=invocation.request_id,
            status="success" if outcome == "response" else "error",
            body=invocation.body,
            error_type=answer_type,
            cold_start=cold,
            duration=answered - invocation.dispatched_monotonic,
            margin=deadline - answered,
            completed=completed,
        )

    def _await_completion(
        self, env: _Environment, invocation: Invocation, deadline: float
    ) -> float | None:
        """Wait until the extensions have released the invocation too, as Lambda does
        before it freezes the environment or hands out the next invocation; at the
        deadline, kill the environment as Lambda would. Seconds from hand-out, or None."""
        server = env.server
        with server.changed:
            server.changed.wait_for(
                lambda: invocation.complete or env.exited.is_set(),
                timeout=max(deadline - time.monotonic(), 0.0),
            )
            completed = invocation.completed_monotonic
        assert invocation.dispatched_monotonic is not None
        if completed is None:
            if not env.exited.is_set():  # a process that died by itself is no kill of ours
                self.kills += 1
            self._discard(env)
            return None
        return completed - invocation.dispatched_monotonic

    # -- freezing ---------------------------------------------------------------------

    def freeze(self, wait: float = 10.0) -> None:
        """Stop the process once it is idle in ``/invocation/next``, as Lambda freezes it."""
        if self.managed:
            raise RuntimeError("a Managed Instances environment is never frozen")
        with self._lock:
            env = self._env
            if env is None or env.frozen:
                return
            with env.server.changed:
                idle = env.server.changed.wait_for(
                    lambda: env.server.polling or env.exited.is_set(), timeout=wait
                )
            if not idle or env.exited.is_set():
                raise RuntimeError("the runtime is not idle; it cannot be frozen now")
            self._set_frozen(env, True)

    def thaw(self) -> None:
        with self._lock:
            if self._env is not None and self._env.frozen:
                self._set_frozen(self._env, False)

    @staticmethod
    def _set_frozen(env: _Environment, frozen: bool) -> None:
        env.signal(signal.SIGSTOP if frozen else signal.SIGCONT)
        env.frozen = frozen

    # -- the process ------------------------------------------------------------------

    def start(self) -> None:
        """Start the execution environment now (otherwise the first invocation does)."""
        with self._lock:
            if self._env is None:
                self._start()

    def _start(self) -> _Environment:
        server = RuntimeAPIServer(
            function_name=self.function_name, handler=self.handler, managed=self.managed
        ).start()
        # Managed Instances: each worker's output on its own connection, as the platform's.
        log_socket = LogSocket(self.output, self._on_output) if self.managed else None
        environment = self._process_environment(server.address)
        if log_socket is not None:
            environment[SOCKET_ENV] = log_socket.path
        try:
            process = subprocess.Popen(
                [self.python, "-m", "awslambdaric", self.handler],
                cwd=self.code_dir,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except BaseException:
            server.stop()
            if log_socket is not None:
                log_socket.close()
            raise
        assert process.stdout is not None
        pump = start_pumping(process.stdout, self.output, self._on_output, "lambda-output")
        self.cold_starts += 1
        self._env = _Environment(process, server, pump, log_socket)
        return self._env

    def _process_environment(self, runtime_api: str) -> dict[str, str]:
        env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_size),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": stream,
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "LANG": "en_US.UTF-8",
                "TZ": ":UTC",
                "PYTHONPATH": str(self.code_dir),
            }
        )
        env.update(self.environment)
        if self.concurrency is not None:
            env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(self.concurrency)
            env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "lambda-managed-instances"
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"  # the only log format there
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": runtime_api,
                "_HANDLER": self.handler,
                "LAMBDA_TASK_ROOT": str(self.code_dir),
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{self.runtime}",
            }
        )
        return env

    def _discard(self, env: _Environment) -> None:
        env.kill()
        if self._env is env:
            self._env = None

    def stop(self, grace: float = SHUTDOWN_GRACE_S) -> None:
        """End the execution environment (the next invocation is a cold start). With
        Managed Instances, SIGTERM first, then SIGKILL after ``grace``, as its shutdown."""
        with self._lock:
            env, self._env = self._env, None
        if env is None:
            return
        if self.managed:
            env.terminate(grace)
        else:
            env.kill()

    def __enter__(self) -> LocalFunction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _error_type(body: bytes) -> str | None:
    """The ``errorType`` of an error document (the runtime client sends no header for it)."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    value = document.get("errorType") if isinstance(document, dict) else None
    return value if isinstance(value, str) and value else None

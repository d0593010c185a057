"""One function app on this machine: the host's side, played here; the worker, real.

:class:`LocalFunctionApp` starts the app's worker process (``worker.py`` under the app's
Python, with ``azure-functions-runtime`` installed), and sends it what the Functions host
sends: worker init, the functions metadata request, a load request per function (for a v1
app, built from each ``function.json``, as the host does), then invocations, concurrently
if asked, and again after a failure under the function's retry policy
(:meth:`LocalFunctionApp.invoke_with_retries`). It measures each invocation from request
to response, and enforces the app's function timeout as the host does: an invocation that
has not answered by then is a timeout, and the worker process is ended (the host restarts
after a function timeout). The app's output (its stdout and stderr, which the host sends
on to its logs) is kept in ``output``; each answer says how much of it the worker had
written before answering, and a worker that ended has its output read to the end.

The worker process finds the host's side of this package through a folder that holds only
it, so an interpreter with nothing but the library workers installed can run a deployment
package: everything the app imports then comes from the package, as on Azure.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NamedTuple

from .._child_output import MAX_OUTPUT_LINES

DEFAULT_INIT_TIMEOUT_S = 60.0
# The host's default functionTimeout when host.json sets none (Consumption).
DEFAULT_FUNCTION_TIMEOUT_S = 300.0
# Written on stdout just before each invocation's answer goes back (followed by the
# request's id): the answers and the app's output travel on different pipes, and the host
# reads from this mark which output came before the answer. It never reaches ``output``.
ANSWERED_MARK = "\x1edoow-local-host answered "
# How long the app's output may take to be read up to an answer, or to its end.
_OUTPUT_TIMEOUT_S = 5.0
SUCCESS = 1
_PASSED_THROUGH = ("PATH", "HOME", "SYSTEMROOT", "TMPDIR", "LD_LIBRARY_PATH")
_DIRECTIONS = {"in": 0, "out": 1, "inout": 2}
_DATA_TYPES = {"string": 1, "binary": 2, "stream": 3}


class AppLoadError(RuntimeError):
    """The worker refused the app: init, indexing or a function load failed."""


class TriggerInput(NamedTuple):
    """A trigger's value (TypedData as JSON) and its trigger metadata."""

    data: dict[str, Any]
    metadata: dict[str, Any] = {}  # noqa: RUF012 - never mutated


def http_request(
    method: str = "GET",
    url: str = "http://localhost:7071/api/hello",
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> TriggerInput:
    http = {
        "method": method,
        "url": url,
        "headers": dict(headers or {}),
        "query": dict(query or {}),
        "params": dict(params or {}),
        "body": {"bytes": base64.b64encode(body).decode("ascii")},
    }
    return TriggerInput({"http": http})


def timer_tick(*, past_due: bool = False) -> TriggerInput:
    document = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": {}, "IsPastDue": past_due}
    return TriggerInput({"json": json.dumps(document)})


def queue_message(
    body: str, *, message_id: str | None = None, dequeue_count: int = 1
) -> TriggerInput:
    metadata = {
        "Id": {"string": message_id or str(uuid.uuid4())},
        "DequeueCount": {"json": str(dequeue_count)},
        "PopReceipt": {"string": "local-pop-receipt"},
    }
    return TriggerInput({"string": body}, metadata)


@dataclass(frozen=True)
class InvocationResult:
    """How one invocation ended, as the host saw it."""

    function: str
    invocation_id: str
    # "success" or "failure" (the worker's StatusResult), or "timeout" (no answer before
    # the function timeout), or "crashed" (the worker process ended).
    status: str
    duration: float | None  # seconds from the request to the response
    margin: float | None  # seconds left before the function timeout at the response
    response: dict[str, Any] | None = field(repr=False)
    # How many lines of the app's ``output`` the worker had written when it answered:
    # ``output[:output_lines]`` is what came before the answer. None: it did not answer.
    output_lines: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def error(self) -> str | None:
        """The function's exception message, as the worker reported it."""
        result = (self.response or {}).get("result") or {}
        exception = result.get("exception") or {}
        return exception.get("message")

    @property
    def return_value(self) -> dict[str, Any] | None:
        value = (self.response or {}).get("return_value")
        return value if isinstance(value, dict) else None

    @property
    def http_status(self) -> int | None:
        http = (self.return_value or {}).get("http")
        return int(http["status_code"]) if http and http.get("status_code") else None

    @property
    def http_body(self) -> bytes:
        http = (self.return_value or {}).get("http") or {}
        return _bytes(http.get("body") or {})


def _bytes(typed: dict[str, Any]) -> bytes:
    if "bytes" in typed:
        return base64.b64decode(typed["bytes"]["$bytes"])
    if "string" in typed:
        return str(typed["string"]).encode()
    return b""


class LoadedFunction(NamedTuple):
    name: str
    function_id: str
    trigger: str  # the trigger binding's name (the parameter the worker passes it as)
    metadata: dict[str, Any]


class Call(NamedTuple):
    """One invocation for :meth:`LocalFunctionApp.invoke_many`."""

    function: str
    trigger: TriggerInput
    invocation_id: str | None = None


class _Pending(NamedTuple):
    command_id: int
    future: Future[tuple[dict[str, Any], float]]
    sent: float


class LocalFunctionApp:
    """A function app (v1 or v2) run by the real Azure library worker in a subprocess."""

    def __init__(
        self,
        app_dir: str | Path,
        *,
        python: str | None = None,
        environment: Mapping[str, str] | None = None,
        init_timeout: float = DEFAULT_INIT_TIMEOUT_S,
        on_output: Callable[[str], object] | None = None,
    ) -> None:
        self.app_dir = Path(app_dir).resolve()
        self.python = os.path.abspath(python) if python else sys.executable
        self.environment = dict(environment or {})
        self.init_timeout = init_timeout
        self.on_output = on_output
        self.timeout = host_function_timeout(self.app_dir, self.environment)
        self.functions: dict[str, LoadedFunction] = {}
        self.output: list[str] = []
        self.timeouts = 0
        self.init_duration: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._commands: IO[str] | None = None
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._next_id = 0
        self._ended = threading.Event()
        # The output read so far when each invocation answered (by request id), and
        # whether the output reached its end; guarded by ``_output_read``.
        self._output_read = threading.Condition()
        self._answered_at: dict[int, int] = {}
        self._output_ended = False
        self._pump: threading.Thread | None = None
        self._host_dir: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalFunctionApp:
        commands_read, commands_write = os.pipe()
        results_read, results_write = os.pipe()
        self._host_dir = _host_code_folder()
        environment = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
        environment.update(
            {
                "FUNCTIONS_WORKER_RUNTIME": "python",
                "PYTHONUNBUFFERED": "1",
                **self.environment,
            }
        )
        paths = [self._host_dir, environment.get("PYTHONPATH", "")]
        environment["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
        started = time.monotonic()
        self._process = subprocess.Popen(
            [
                self.python,
                "-m",
                "doow_serverless_dev.azure_local.worker",
                str(self.app_dir),
                "--commands",
                str(commands_read),
                "--results",
                str(results_write),
            ],
            pass_fds=(commands_read, results_write),
            env=environment,
            cwd=self.app_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        os.close(commands_read)
        os.close(results_write)
        self._commands = os.fdopen(commands_write, "w", encoding="utf-8")
        results = os.fdopen(results_read, "r", encoding="utf-8")
        threading.Thread(target=self._read_results, args=(results,), daemon=True).start()
        assert self._process.stdout is not None
        self._pump = threading.Thread(
            target=self._read_output, args=(self._process.stdout,), name="azure-output", daemon=True
        )
        self._pump.start()
        try:
            self._load()
        except BaseException:
            self.stop()
            raise
        self.init_duration = time.monotonic() - started
        return self

    def _load(self) -> None:
        init = self._request({"op": "init"}, self.init_timeout)
        _check(init, "worker init")
        listed = self._request({"op": "metadata"}, self.init_timeout)
        _check(listed, "functions metadata")
        if listed.get("use_default_metadata_indexing"):
            described = v1_metadata(self.app_dir)  # the host reads each function.json
        else:
            described = listed.get("function_metadata_results") or []
        for listed_metadata in described:
            function_id = listed_metadata.get("function_id") or str(uuid.uuid4())
            metadata = {**listed_metadata, "function_id": function_id}
            loaded = self._request(
                {"op": "load", "function_id": function_id, "metadata": metadata},
                self.init_timeout,
            )
            _check(loaded, f"loading {metadata['name']}")
            trigger = next(
                name
                for name, info in metadata["bindings"].items()
                if str(info.get("type", "")).lower().endswith("trigger")
            )
            self.functions[metadata["name"]] = LoadedFunction(
                metadata["name"], function_id, trigger, metadata
            )

    def stop(self) -> None:
        try:
            self._stop_worker()
        finally:
            if self._host_dir is not None:
                shutil.rmtree(self._host_dir, ignore_errors=True)

    def _stop_worker(self) -> None:
        process = self._process
        if process is None:
            return
        if self._commands is not None:
            with contextlib.suppress(OSError, ValueError):
                self._commands.write(json.dumps({"op": "stop"}) + "\n")
                self._commands.flush()
                self._commands.close()
        try:
            process.wait(5.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10.0)
        self._ended.wait(5.0)
        self._drain_output()

    def __enter__(self) -> LocalFunctionApp:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- invocations -----------------------------------------------------------------------

    def invoke(
        self, function: str, trigger: TriggerInput, *, invocation_id: str | None = None
    ) -> InvocationResult:
        return self.invoke_many([Call(function, trigger, invocation_id)])[0]

    def invoke_many(self, calls: Sequence[Call]) -> list[InvocationResult]:
        """Send every invocation at once; each is timed, and held to the timeout, alone."""
        sent = []
        for call in calls:
            invocation_id = call.invocation_id or str(uuid.uuid4())
            pending = self._send(self._invocation(call.function, call.trigger, invocation_id))
            sent.append((call.function, invocation_id, pending))
        return [self._result(*entry) for entry in sent]

    def retry_policy(self, function: str) -> dict[str, Any] | None:
        """The function's retry policy as the worker described it (None: it has none)."""
        options = self.functions[function].metadata.get("retry_options")
        return options if isinstance(options, dict) and options else None

    def invoke_with_retries(
        self,
        function: str,
        trigger: TriggerInput,
        *,
        attempts: int,
        before_retry: Callable[[int], object] | None = None,
    ) -> list[InvocationResult]:
        """Invoke as the host does under the function's retry policy: the same input again
        after each failure, with the retry count in the retry context, until it succeeds
        or the policy's retries (``max_retry_count``, -1 for no end) are used up; here at
        most ``attempts`` invocations in all. The policy's delays are not waited:
        ``before_retry(retry_count)`` runs in their place."""
        policy = self.retry_policy(function) or {}
        most = int(policy.get("max_retry_count", 0))
        results: list[InvocationResult] = []
        for retry_count in range(attempts):
            if retry_count:
                if most != -1 and retry_count > most:
                    break
                if before_retry is not None:
                    before_retry(retry_count)
            invocation_id = str(uuid.uuid4())
            command = self._invocation(function, trigger, invocation_id)
            command["retry_context"] = {"retry_count": retry_count, "max_retry_count": most}
            results.append(self._result(function, invocation_id, self._send(command)))
            if results[-1].ok:
                break
        return results

    def _invocation(
        self, function: str, trigger: TriggerInput, invocation_id: str
    ) -> dict[str, Any]:
        loaded = self.functions[function]
        return {
            "op": "invoke",
            "function_id": loaded.function_id,
            "invocation_id": invocation_id,
            "input_data": {loaded.trigger: trigger.data},
            "trigger_metadata": trigger.metadata,
        }

    def _result(self, function: str, invocation_id: str, pending: _Pending) -> InvocationResult:
        deadline = pending.sent + self.timeout
        try:
            response, received = pending.future.result(max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            # The host shuts the worker down when a function passes its timeout.
            self.timeouts += 1
            self.kill()
            return InvocationResult(function, invocation_id, "timeout", None, None, None)
        except ConnectionError:
            return InvocationResult(function, invocation_id, "crashed", None, None, None)
        duration = received - pending.sent
        status = "success" if (response.get("result") or {}).get("status") == SUCCESS else "failure"
        return InvocationResult(
            function,
            invocation_id,
            status,
            duration,
            self.timeout - duration,
            response,
            self._output_before(pending.command_id),
        )

    def describe(self) -> dict[str, Any]:
        """How the worker loaded each function (from its registry), for tests to compare."""
        return self._request({"op": "describe"}, self.init_timeout)

    def kill(self) -> None:
        """End the worker process with SIGKILL; its output is read to the end first."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10.0)
        self._drain_output()

    # -- the app's output ------------------------------------------------------------------

    def _read_output(self, stream: IO[bytes]) -> None:
        """Keep each line of the worker's stdout and stderr; note where each answer came."""
        with stream:
            for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                # The mark may follow output that did not end its line.
                text, marked, command_id = line.partition(ANSWERED_MARK)
                if text or not marked:
                    self._keep_output(text)
                if marked:
                    with self._output_read:
                        self._answered_at[int(command_id)] = len(self.output)
                        self._output_read.notify_all()
        with self._output_read:
            self._output_ended = True
            self._output_read.notify_all()

    def _keep_output(self, line: str) -> None:
        if len(self.output) < MAX_OUTPUT_LINES:
            self.output.append(line)
        if self.on_output is not None:
            self.on_output(line)

    def _output_before(self, command_id: int) -> int | None:
        """How many output lines the worker wrote before it answered ``command_id``."""
        with self._output_read:
            self._output_read.wait_for(
                lambda: command_id in self._answered_at or self._output_ended, _OUTPUT_TIMEOUT_S
            )
            return self._answered_at.pop(command_id, None)

    def _drain_output(self) -> None:
        """Wait until everything the ended process wrote is in ``output``."""
        pump = self._pump
        if pump is not None and pump is not threading.current_thread():
            pump.join(_OUTPUT_TIMEOUT_S)

    # -- the pipes -------------------------------------------------------------------------

    def _send(self, command: dict[str, Any]) -> _Pending:
        if not self.alive or self._commands is None:
            raise RuntimeError("the function app's worker is not running")
        with self._lock:
            self._next_id += 1
            command = {**command, "id": self._next_id}
            pending = _Pending(self._next_id, Future(), time.monotonic())
            self._pending[self._next_id] = pending
            self._commands.write(json.dumps(command) + "\n")
            self._commands.flush()
        return pending

    def _request(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        pending = self._send(command)
        try:
            response, _ = pending.future.result(timeout)
        except TimeoutError:
            raise AppLoadError(f"no answer to {command['op']} within {timeout} s") from None
        except ConnectionError as error:
            raise AppLoadError(f"{error}; output:\n{self._tail()}") from None
        return response

    def _read_results(self, results: IO[str]) -> None:
        with results:
            for line in results:
                received = time.monotonic()
                answer = json.loads(line)
                with self._lock:
                    pending = self._pending.pop(answer["id"], None)
                if pending is None:
                    continue
                if "error" in answer:
                    pending.future.set_exception(
                        AppLoadError(f"the local host failed: {answer['traceback']}")
                    )
                else:
                    pending.future.set_result((answer["response"], received))
        with self._lock:
            left, self._pending = list(self._pending.values()), {}
        for pending in left:
            pending.future.set_exception(ConnectionError("the worker process ended"))
        self._ended.set()

    def _tail(self, lines: int = 40) -> str:
        return "\n".join(self.output[-lines:])


def _host_code_folder() -> str:
    """A new folder holding only a link to this distribution's package, for the worker's path."""
    folder = tempfile.mkdtemp(prefix="doow-azure-host-")
    package = Path(__file__).resolve().parents[1]
    os.symlink(package, os.path.join(folder, package.name))
    return folder


def _check(response: dict[str, Any], what: str) -> None:
    result = response.get("result") or {}
    if result.get("status") != SUCCESS:
        exception = result.get("exception") or {}
        raise AppLoadError(
            f"{what} failed: {exception.get('message')}\n{exception.get('stack_trace', '')}"
        )


def host_function_timeout(app_dir: Path, environment: Mapping[str, str]) -> float:
    """The function timeout the host enforces: the app setting, else host.json's.

    Only the "hh:mm:ss" form, which is what the apps run here use.
    """
    text = environment.get("AzureFunctionsJobHost__functionTimeout")
    host_json = app_dir / "host.json"
    if not text and host_json.is_file():
        text = json.loads(host_json.read_text(encoding="utf-8")).get("functionTimeout")
    if not text:
        return DEFAULT_FUNCTION_TIMEOUT_S
    hours, minutes, seconds = str(text).split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def v1_metadata(app_dir: Path) -> list[dict[str, Any]]:
    """What the host sends for each v1 function: its folder's function.json, resolved."""
    described = []
    for config in sorted(app_dir.glob("*/function.json")):
        document = json.loads(config.read_text(encoding="utf-8"))
        folder = config.parent
        bindings = {}
        for binding in document.get("bindings", []):
            bindings[binding["name"]] = {
                "type": binding["type"],
                "direction": _DIRECTIONS[binding.get("direction", "in")],
                "data_type": _DATA_TYPES.get(str(binding.get("dataType", "")).lower(), 0),
            }
        described.append(
            {
                "name": folder.name,
                "directory": str(folder),
                "script_file": str(folder / document.get("scriptFile", "__init__.py")),
                "entry_point": document.get("entryPoint", ""),
                "language": "python",
                "bindings": bindings,
                "raw_bindings": [json.dumps(b) for b in document.get("bindings", [])],
            }
        )
    return described

"""The worker process of a local function app: the real Azure library worker, driven as the
proxy worker drives it.

    python -m doow_serverless_dev.azure_local.worker APP_DIR --commands FD --results FD

Run with the Python of the app (3.13 for ``azure-functions-runtime``). Like the proxy that
the Functions host starts, this process puts the app on ``sys.path``, ahead of it the
dependencies of a deployment package (``.python_packages/lib/site-packages``: on Azure the
app's own packages come before the worker's), picks the library
worker (``azure_functions_runtime`` when the app has a ``function_app.py``, else
``azure_functions_runtime_v1``), starts its thread pool, and awaits its ``handle_event``
coroutines with the host's requests on one event loop, each request in its own task so
invocations run concurrently. The requests come as JSON lines on one pipe; the responses
go back on another, so the app's own output keeps stdout and stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

from . import _messages as protos
from ._app import ANSWERED_MARK

SCRIPT_FILE = "function_app.py"
HOST = "127.0.0.1"
# Where a deployment package holds the app's dependencies (Azure's docs, Python build options).
PACKAGES = os.path.join(".python_packages", "lib", "site-packages")


class WorkerRequest(NamedTuple):
    """What the proxy hands each ``handle_event`` coroutine."""

    name: str
    request: Any
    properties: dict[str, Any] | None = None


def load_runtime(app_dir: str) -> ModuleType:
    script = os.environ.get("PYTHON_SCRIPT_FILE_NAME", SCRIPT_FILE)
    if os.path.exists(os.path.join(app_dir, script)):
        return importlib.import_module("azure_functions_runtime")
    return importlib.import_module("azure_functions_runtime_v1")


def request(**content: Any) -> Any:
    return protos.StreamingMessage(request_id="local-host", **content)


def binding_infos(bindings: dict[str, Any]) -> dict[str, Any]:
    return {name: protos.BindingInfo(**info) for name, info in bindings.items()}


async def dispatch(runtime: ModuleType, command: dict[str, Any], app_dir: str) -> Any:
    op = command["op"]
    if op == "init":
        runtime.start_threadpool_executor()
        message = request(
            worker_init_request=protos.WorkerInitRequest(
                host_version="4.0.0",
                capabilities=command.get("capabilities") or {},
                function_app_directory=app_dir,
                worker_directory=os.path.dirname(str(runtime.__file__)),
            )
        )
        properties = {"protos": protos, "host": HOST}
        return await runtime.worker_init_request(
            WorkerRequest("WorkerInitRequest", message, properties)
        )
    if op == "metadata":
        message = request(
            functions_metadata_request=protos.FunctionsMetadataRequest(
                function_app_directory=app_dir
            )
        )
        return await runtime.functions_metadata_request(
            WorkerRequest("WorkerMetadataRequest", message)
        )
    if op == "load":
        described = dict(command["metadata"])
        described["bindings"] = binding_infos(described.get("bindings") or {})
        message = request(
            function_load_request=protos.FunctionLoadRequest(
                function_id=command["function_id"],
                metadata=protos.RpcFunctionMetadata(**described),
            )
        )
        return await runtime.function_load_request(WorkerRequest("FunctionLoadRequest", message))
    if op == "invoke":
        retry = command.get("retry_context") or {}
        message = request(
            invocation_request=protos.InvocationRequest(
                invocation_id=command["invocation_id"],
                function_id=command["function_id"],
                input_data=[
                    protos.ParameterBinding(name=name, data=protos.typed_data(data))
                    for name, data in command["input_data"].items()
                ],
                trigger_metadata={
                    key: protos.typed_data(value)
                    for key, value in (command.get("trigger_metadata") or {}).items()
                },
                trace_context=protos.RpcTraceContext(**(command.get("trace_context") or {})),
                retry_context=protos.RetryContext(
                    retry_count=retry.get("retry_count", 0),
                    max_retry_count=retry.get("max_retry_count", 0),
                    exception=protos.RpcException(),
                ),
            )
        )
        return await runtime.invocation_request(WorkerRequest("FunctionInvocationRequest", message))
    if op == "describe":
        return describe(runtime)
    raise ValueError(f"unknown op {op!r}")


def describe(runtime: ModuleType) -> dict[str, Any]:
    """How the worker loaded each function (its registry), for tests to compare."""
    registry = importlib.import_module(f"{runtime.__name__}.handle_event")._functions
    loaded: dict[str, Any] = {}
    for info in registry._functions.values():
        returns = info.return_type
        loaded[info.name] = {
            "requires_context": info.requires_context,
            "is_async": info.is_async,
            "has_return": info.has_return,
            "is_http_func": info.is_http_func,
            "directory": info.directory,
            "input_types": {name: t.binding_name for name, t in info.input_types.items()},
            "output_types": {name: t.binding_name for name, t in info.output_types.items()},
            "return_type": getattr(returns, "binding_name", returns),
            "parameters": list(inspect.signature(info.func).parameters),
        }
    return loaded


async def serve(runtime: ModuleType, app_dir: str, commands: Any, results: Any) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    lock = threading.Lock()

    def read() -> None:
        for line in commands:
            loop.call_soon_threadsafe(inbox.put_nowait, json.loads(line))
        loop.call_soon_threadsafe(inbox.put_nowait, None)

    def write(document: dict[str, Any]) -> None:
        text = json.dumps(document) + "\n"
        with lock:
            results.write(text)
            results.flush()

    async def answer(command: dict[str, Any]) -> None:
        try:
            response = await dispatch(runtime, command, app_dir)
            if command["op"] == "invoke":
                mark_answered(command["id"])
            write({"id": command["id"], "response": protos.to_json(response)})
        except Exception as error:  # the host's side failed, not the function
            write(
                {
                    "id": command["id"],
                    "error": f"{type(error).__name__}: {error}",
                    "traceback": traceback.format_exc(),
                }
            )

    threading.Thread(target=read, name="local-host-commands", daemon=True).start()
    running: set[asyncio.Task[None]] = set()
    while True:
        command = await inbox.get()
        if command is None or command["op"] == "stop":
            break
        task = asyncio.create_task(answer(command))
        running.add(task)
        task.add_done_callback(running.discard)


def mark_answered(command_id: int) -> None:
    """Say on stdout, after all the app wrote before it, that this invocation answers."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # stdout closed, replaced
        sys.stdout.write(f"{ANSWERED_MARK}{command_id}\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None, *, end: Callable[[int], Any] = os._exit) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("app_dir")
    parser.add_argument("--commands", type=int, required=True, help="fd to read requests from")
    parser.add_argument("--results", type=int, required=True, help="fd to write responses to")
    args = parser.parse_args(argv)
    app_dir = os.path.abspath(args.app_dir)
    # As the proxy worker is started: in the app's folder, with the app importable.
    os.chdir(app_dir)
    sys.path.insert(0, app_dir)
    packages = os.path.join(app_dir, PACKAGES)
    if os.path.isdir(packages):
        sys.path.insert(0, packages)
    runtime = load_runtime(app_dir)
    with (
        os.fdopen(args.commands, "r", encoding="utf-8") as commands,
        os.fdopen(args.results, "w", encoding="utf-8") as results,
    ):
        asyncio.run(serve(runtime, app_dir, commands, results))
    sys.stdout.flush()
    sys.stderr.flush()
    # Threads of the worker's pool may still run a function: the host ends the process.
    end(0)
    return 0


if __name__ == "__main__":
    main()

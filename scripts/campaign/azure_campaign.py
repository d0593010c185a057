"""The Azure Functions fault campaign: the Lambda campaign's faults, under the real worker.

    .venv/bin/python -m scripts.campaign.azure_campaign --invocations 300 --seed 1 \\
        --report docs/reliability-azure.md

The campaign app (``azure_app/function_app.py``, v2 programming model, two HTTP functions
wrapped with ``with_azure_function``: one ``def`` on the worker's thread pool, one
``async def`` on its event loop, taken in turn) is indexed, loaded and invoked by the real
Azure library worker (``azure-functions-runtime``, Python 3.13, ``.venv-azure``), with
``doow_serverless_dev.azure_local`` playing the Functions host: worker init, metadata, load,
invocations, and the function timeout (an invocation that has not answered by then is a
timeout, and the worker process is ended; the campaign starts a new one in the same
sandbox, as the host restarts its worker).

Everything else is the Lambda campaign's (:mod:`.lambda_campaign`, given this module's
:data:`AZURE` platform), as for Vercel. Exits 1 when an event was lost or doubled, a
deadline was missed because of the SDK, or the key leaked.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from doow_serverless_dev.azure_local import AppLoadError, LocalFunctionApp, http_request
from doow_serverless_dev.azure_local import InvocationResult as AzureResult
from doow_serverless_dev.lambda_local import InvocationResult

from .exports import app_insights_export
from .faults import Timings
from .lambda_campaign import Output, Platform, invocation_result, main_for
from .report import Page

APP_DIR = Path(__file__).resolve().parent / "azure_app"
REPO = Path(__file__).resolve().parents[2]
ROUTES = ("campaign_sync", "campaign_async")
DEFAULT_AZURE_PYTHON = REPO / ".venv-azure" / "bin" / "python"
# The worker's answers, as the Lambda campaign reads them.
_STATUSES = {"success": "success", "failure": "error", "timeout": "timeout", "crashed": "crashed"}

TITLE = "# Reliability on Azure Functions: the fault campaign"

INTRO = """\
The Lambda campaign ([reliability.md](reliability.md)) at a smaller size, under the real
Azure Functions library worker. Same promise: usage events are **never lost, never counted
twice, and never the cause of a timeout**, whatever the ingest endpoint does.

How it differs from the Lambda run (`scripts/campaign/azure_campaign.py`):

- The app (`azure_app/function_app.py`, v2 programming model) has two HTTP functions
  wrapped with `with_azure_function`, taken in turn: a `def` one, run and flushed on the
  worker's thread pool, and an `async def` one, run on the worker's event loop with its
  flush in a helper thread. The real library worker (`azure-functions-runtime`, Python
  3.13, `.venv-azure`) indexes, loads and invokes them; the campaign plays the Functions
  host (`doow_serverless_dev.azure_local`): worker init, metadata, load, invocations, and the
  function timeout, set to 1.5 s with `AzureFunctionsJobHost__functionTimeout`
  (`00:00:01.500`), which the SDK reads as well.
- **Deadlines**: Azure tells a function nothing about its time; the SDK budgets its flush
  from the function timeout, measured from when the worker called the function. The host
  measures from when it sent the invocation, so an invocation is in time when its answer
  (sent after the flush) reached the host before the timeout. One that did not is killed
  with its worker process, which the campaign restarts in the same sandbox (same spool
  directory), as the host restarts its worker after a function timeout.
- **Stale keep-alive does not apply as such**: Azure does not suspend a worker between
  invocations, so the second invocation simply comes after the worker was idle longer than
  the collector's idle timeout; the connection the collector closed meanwhile must not be
  reused.
- **Kills**: "killed at the deadline" is the host ending the worker whose flush (with
  `DOOW_TRACK_FLUSH_RESERVE=0`) runs into the function timeout; "SIGKILL while a request
  hangs" kills the worker while its flush waits on the collector (before the invocation
  answered); "SIGKILL at a random moment of the flush" kills it at a random moment after
  the function returned; a reclaimed sandbox is killed while idle. Each is followed by a
  new worker in the same sandbox (its `/tmp` lost, for the kinds that say so), and at the
  end by the recovery the docs give: an Application Insights query's export of each log,
  replayed.
- Every other fault kind of the Lambda campaign applies as it is. Not covered: the v1
  programming model and non-HTTP triggers (the same wrapper and flush; see
  `tests/azure/`), and invocations that wait for a free worker thread (time the SDK cannot
  see, see [azure.md](azure.md)): the campaign invokes one at a time.
"""


class AzureWorker:
    """One sandbox's app under the real worker; restarted in place when its process ended.

    Each invocation is an HTTP POST of the campaign's payload (with the function timeout,
    so the function can work until a given time is left), to the sync and the async
    function in turn; the answer comes back shaped as the Lambda harness's result.
    """

    def __init__(
        self, python: Path, timeout: float, environment: dict[str, str], on_output: Output
    ) -> None:
        self._python = python
        self._timeout = timeout
        self._environment = {
            **environment,
            "AzureFunctionsJobHost__functionTimeout": _timespan(timeout),
        }
        self._on_output = on_output
        self._app: LocalFunctionApp | None = None
        self._invocations = 0

    @property
    def pid(self) -> int | None:
        app = self._app
        # The harness does not expose its worker's pid; the process is the harness's own.
        process = None if app is None else app._process
        return None if process is None or process.poll() is not None else process.pid

    def invoke(self, payload: dict[str, Any]) -> InvocationResult:
        cold = self.pid is None
        try:
            app = self._running()
        except AppLoadError as exc:
            return invocation_result("init_error", error=str(exc), cold_start=cold)
        route = ROUTES[self._invocations % len(ROUTES)]
        self._invocations += 1
        body = {**payload, "timeout_ms": round(self._timeout * 1000)}
        trigger = http_request(
            "POST",
            f"http://localhost/api/{route}",
            body=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        result = _from_azure(app.invoke(route, trigger), cold)
        if result.status in ("timeout", "crashed"):
            # Its results pipe closed before the process was gone: reap it now, so the next
            # invocation cannot take the dying worker for a live one.
            self._discard()
        return result

    def freeze(self) -> None:
        """Nothing: Azure does not suspend a worker between invocations."""

    def stop(self) -> None:
        """Kill the worker, as the platform reclaims an instance."""
        self._discard()

    def _running(self) -> LocalFunctionApp:
        if self._app is None or not self._app.alive:
            self._discard()
            app = LocalFunctionApp(
                APP_DIR,
                python=str(self._python),
                environment=self._environment,
                on_output=self._on_output,
            )
            self._app = app.start()
        return self._app

    def _discard(self) -> None:
        app, self._app = self._app, None
        if app is not None:
            app.kill()  # SIGKILL if it still runs, and wait for it
            app.stop()  # close the pipes


def _from_azure(result: AzureResult, cold: bool) -> InvocationResult:
    return invocation_result(
        _STATUSES[result.status],
        result.http_body,
        error=result.error,
        cold_start=cold,
        duration=result.duration,
        margin=result.margin,
    )


def _timespan(seconds: float) -> str:
    """``00:00:01.500``: the form host.json and the app setting take."""
    minutes, rest = divmod(seconds, 60)
    return f"00:{int(minutes):02d}:{rest:06.3f}"


def azure_python() -> Path:
    """The interpreter with the Azure workers: ``DOOW_AZURE_PYTHON``, else ``.venv-azure``."""
    return Path(os.environ.get("DOOW_AZURE_PYTHON") or DEFAULT_AZURE_PYTHON)


def azure_function(
    name: str, environment: Mapping[str, str], timings: Timings, on_output: Output
) -> AzureWorker:
    """One sandbox's app (``name`` aside: the sandbox's spool and log tell them apart)."""
    return AzureWorker(azure_python(), timings.function_timeout, dict(environment), on_output)


AZURE = Platform(
    name="Azure Functions: the real library worker (azure-functions-runtime), local host",
    function=azure_function,
    module="scripts.campaign.azure_campaign",
    integration="Azure Functions",
    count_option="--invocations",
    default_count=1000,
    page=Page(TITLE, INTRO),
    export=app_insights_export,
    export_suffix=".json",
)


def main(argv: Sequence[str] | None = None) -> int:
    return main_for(AZURE, argv)


if __name__ == "__main__":
    sys.exit(main())

"""The Vercel fault campaign: the Lambda campaign's faults, under Vercel's real runtime.

    .venv/bin/python -m scripts.campaign.vercel_campaign --requests 300 --seed 1 \\
        --report docs/reliability-vercel.md

The campaign function (``vercel_function/api/campaign_vercel.py``, a ``handler`` class
wrapped with ``with_vercel``) is served by Vercel's own runtime (``vercel_runtime.vc_init``
from ``vercel-runtime``, in ``.venv-vercel``) over its IPC socket, with
``doow_serverless_dev.vercel_local`` playing the platform: requests with the
``x-vercel-internal-*`` headers and a deadline, the end of each invocation (after the
``wait_until`` work, that is the flush), and the kill of the instance at the deadline.

Everything else is the Lambda campaign's (:mod:`.lambda_campaign`, given this module's
:data:`VERCEL` platform): the seeded schedule, the collector and its fault plans, the three
sandboxes (a spool directory and a log each, kept across process restarts), the kills, the
replays, the balance and the command line. Exits 1 when an event was lost or doubled, a
deadline was missed because of the SDK, or the key leaked.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from doow_serverless_dev.lambda_local import InvocationResult
from doow_serverless_dev.vercel_local import VercelFunction, VercelResponse

from .exports import vercel_drain_export
from .faults import Timings
from .lambda_campaign import Output, Platform, invocation_result, main_for
from .report import Page

FUNCTION_DIR = Path(__file__).resolve().parent / "vercel_function"
ENTRYPOINT = "api/campaign_vercel.py"
REPO = Path(__file__).resolve().parents[2]
DEFAULT_VERCEL_PYTHON = REPO / ".venv-vercel" / "bin" / "python"

TITLE = "# Reliability on Vercel: the fault campaign"

INTRO = """\
The Lambda campaign ([reliability.md](reliability.md)) at a smaller size, under Vercel's
own Python runtime. Same promise: usage events are **never lost, never counted twice, and
never the cause of a timeout**, whatever the ingest endpoint does.

How it differs from the Lambda run (`scripts/campaign/vercel_campaign.py`):

- The function (`vercel_function/api/campaign_vercel.py`, a `BaseHTTPRequestHandler`
  class wrapped with `with_vercel`) is served by `vercel_runtime.vc_init` from
  `vercel-runtime` (Python 3.12, `.venv-vercel`) in its IPC mode. The campaign plays the
  platform (`doow_serverless_dev.vercel_local`): each request carries the
  `x-vercel-internal-*` headers and a deadline 1.5 s ahead; the invocation is over when
  the runtime reports `end` over the IPC socket, which it does once the work handed to
  `wait_until` (the SDK's flush, after the response) is done; an instance that has not
  ended by its deadline is killed, and the next request starts a new one in the same
  sandbox (same spool directory), as a cold start.
- **Deadlines** are the whole invocation's: a request counts as in time only when its
  response *and* its flush ended before the deadline (the margin is measured at `end`).
- **Stale keep-alive**: between the two requests the campaign stops the idle instance
  (`SIGSTOP`) for longer than the collector's idle timeout, then resumes it (`SIGCONT`) to
  serve the second one, as a Vercel instance is suspended between invocations.
- **Kills**: "killed at the deadline" is the harness ending an instance whose flush (with
  `DOOW_TRACK_FLUSH_RESERVE=0`) runs into the deadline; "SIGKILL while a request hangs"
  kills the runtime process while its flush waits on the collector, after the response was
  sent; "SIGKILL at a random moment of the flush" kills it at a random moment after the
  handler answered (the flush runs after the response, handed to `wait_until`; the events
  got their log line before the response); a reclaimed sandbox is killed while idle. Each
  is followed by a new instance in the same sandbox (its `/tmp` lost, for the kinds that
  say so), and at the end by the recovery the docs give: a Log Drain's NDJSON export of
  each log, replayed.
- Every fault kind of the Lambda campaign applies. Not covered: the runtime's older Lambda
  mode (no IPC socket; the response is held until the flush, see
  [vercel.md](vercel.md)), and WSGI/ASGI apps, whose flush goes through the same
  `wait_until` path (they are run under the runtime in `tests/vercel/`).
"""


class VercelInstance:
    """One sandbox's function under the real runtime, answering as the campaign expects.

    Each invocation is a POST of the campaign's payload; the answer comes back shaped as
    the Lambda harness's :class:`InvocationResult`: ``success`` (answered, and ended before
    the deadline), ``error`` (an HTTP error), ``timeout`` (killed at the deadline) or
    ``crashed`` (the process died), with the margin measured at the invocation's end.
    """

    def __init__(
        self, python: Path, timeout: float, environment: dict[str, str], on_output: Output
    ) -> None:
        self._function = VercelFunction(
            ENTRYPOINT,
            project_dir=FUNCTION_DIR,
            python=python,
            variable="handler",
            max_duration=timeout,
            environment=environment,
            on_output=on_output,
        )
        self._frozen: int | None = None

    @property
    def pid(self) -> int | None:
        return self._function.pid

    def invoke(self, payload: dict[str, Any]) -> InvocationResult:
        self.thaw()
        cold = self._function.pid is None
        try:
            response = self._function.request(
                "POST", "/", body=json.dumps(payload).encode(), headers=_JSON
            )
        except RuntimeError as exc:  # the runtime did not start
            return invocation_result("init_error", error=str(exc), cold_start=cold)
        return _from_vercel(response)

    def freeze(self) -> None:
        """Suspend the idle instance, as Vercel does between invocations."""
        pid = self._function.pid
        if pid is not None:
            _signal(pid, signal.SIGSTOP)
            self._frozen = pid

    def thaw(self) -> None:
        pid, self._frozen = self._frozen, None
        if pid is not None:
            _signal(pid, signal.SIGCONT)

    def stop(self) -> None:
        """Kill the instance (a frozen one too), as the platform reclaims it."""
        self.thaw()
        self._function.stop(grace=0.0)


_JSON = {"content-type": "application/json"}


def _from_vercel(response: VercelResponse) -> InvocationResult:
    if response.timed_out:
        status = "timeout"
    elif response.ended_at is None or response.status is None:
        status = "crashed"
    else:
        status = "success" if response.status == 200 else "error"
    ended = response.ended_at
    return invocation_result(
        status,
        response.body,
        error=response.error,
        cold_start=response.cold_start,
        duration=None if ended is None else ended - response.started_at,
        margin=response.margin,
    )


def vercel_python() -> Path:
    """The interpreter with ``vercel-runtime``: ``DOOW_VERCEL_PYTHON``, else ``.venv-vercel``."""
    return Path(os.environ.get("DOOW_VERCEL_PYTHON") or DEFAULT_VERCEL_PYTHON)


def vercel_function(
    name: str, environment: Mapping[str, str], timings: Timings, on_output: Output
) -> VercelInstance:
    """One sandbox's function (``name`` aside: the sandbox's spool and log tell them apart)."""
    return VercelInstance(vercel_python(), timings.function_timeout, dict(environment), on_output)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


VERCEL = Platform(
    name="Vercel: the real runtime (vercel-runtime's vc_init, IPC mode), local platform side",
    function=vercel_function,
    module="scripts.campaign.vercel_campaign",
    integration="Vercel",
    count_option="--requests",
    default_count=1000,
    page=Page(TITLE, INTRO),
    export=vercel_drain_export,
    export_suffix=".ndjson",
)


def main(argv: Sequence[str] | None = None) -> int:
    return main_for(VERCEL, argv)


if __name__ == "__main__":
    sys.exit(main())

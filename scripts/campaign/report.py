"""The Markdown report of a campaign: a document that the same command regenerates."""

from __future__ import annotations

from .evidence import EFFECTS, RETRIES
from .faults import FaultKind
from .result import CampaignResult

TITLE = "# Reliability: the fault campaign"

INTRO = f"""\
doow-serverless promises that usage events are **never lost, never counted twice, and never
the cause of a timeout**, whatever the ingest endpoint does. This page is the evidence: a
campaign runs many invocations of a real function under the real platform runtime against a
local collector that misbehaves in every way the SDK must survive, then accounts for every
event from the collector's store.

How the campaign works (`scripts/campaign/`):

- The function (`function/app.py`, wrapped with `with_lambda`) runs under the real Lambda
  runtime client (`awslambdaric`) in a subprocess; the harness plays the Runtime API, kills
  the process at its deadline as Lambda does, and freezes it between invocations on request.
  Each invocation is told which events to track (1 to 30, sometimes none), each with an
  `idempotency_key` the campaign chose, so the campaign knows the id of every event.
- Before each invocation a seeded schedule picks a fault: 5xx (some after the batch was
  stored, so only the answer is lost); 429 with a `Retry-After` shorter and longer than the
  flush budget; connection refused (the collector is stopped, then restarted on the same
  port with the same database); a connection reset, before and after storing; a slow
  endpoint, one that stores the batch only after the budget, and one that hangs; an
  invocation that ends near its deadline; a 207 partial rejection, by the fault plan or for
  an unknown license; a 413; a stale keep-alive connection (the process is frozen longer
  than the collector's idle timeout); a kill at the deadline in the middle of a flush; a
  SIGKILL while a request hangs; a handler that never returns, killed at its deadline with
  the events it tracked (the SDK's deadline watch writes them out shortly before the
  deadline); a handler whose usage is known only as it returns, inside the flush reserve
  (no time to send: only the log line and the spool keep those events); and a SIGKILL at a
  random moment after the handler returned, before, during or after the flush's request,
  against an endpoint with a realistic round trip (30–120 ms), half of those followed by a
  restart with `/tmp` lost (a new sandbox: the spool is gone, only the log is left).
  Healthy invocations are mixed in.
- A fault counts as exercised only when its effect was seen, not when it was scheduled: the
  campaign reads the collector's own record of how it ended each request (the status it
  answered, a hang, a reset; its fault plan's position) and the harness's (a process killed)
  before and after every invocation, and again once the collector has settled; a refused
  connection and the log fallback are seen in what the SDK reported. The faults table gives
  both counts, and what was seen. A kind none of whose faults took effect is tried again
  after the schedule, at most {RETRIES} times (a kill at the deadline races the SDK's own end of
  the flush); the run fails when a kind it scheduled never took effect.
  After a 429 with a `Retry-After` beyond the budget the campaign waits that long, as the SDK
  sends nothing until then and the next fault would have nothing to act on.
- Three simulated sandboxes each keep a spool directory across process restarts (unless a
  fault loses it), and every line their processes print goes to a log file. `main` runs
  most faults; `no-reserve` (`DOOW_TRACK_FLUSH_RESERVE=0`: the flush runs right into the
  deadline) only the kills at the deadline; `no-spool` has a spool it cannot use and an
  endpoint answering 503, and half the time it is then reclaimed while idle.
- At the end, one healthy invocation per sandbox lets the last process send what it holds;
  the sandboxes are killed and their `/tmp` lost, as a platform reclaims them. The recovery
  is then exactly the one `docs/recovery.md` gives users: each sandbox's log is exported as
  the platform's tools export it (only the lines the documented filter selects), and
  `doow-serverless replay --log` runs over the exports, twice: the second run must store
  nothing new. No spool is replayed: on these platforms no one can reach a dead sandbox's.
- The balance: *lost* = tracked − stored − rejected by the server, and must be 0. An event
  counts as rejected only when the collector refused it in a 207 it sent: the collector
  records each refusal in its store, with whether that 207 was the answer or a fault
  replaced it. The SDK's own rejection reports (the function prints the ids `on_error` is
  given) must name no event the collector did not refuse. *Duplicates* (stored ids the
  campaign never tracked, rows beyond one per id) must be 0, and every stored quantity must
  be the tracked one. An invocation meant to end in time that did not answer before its
  deadline is a *missed deadline*, and there must be none. The API key must appear nowhere:
  not in the logs, the spool files (searched after every kill too), the replay's output or
  the collector's store.
"""

PENDING = """\
## Results

Pending: the full run is made once the SDK's spool and `doow-serverless replay` have landed.
Regenerate this page with:

```sh
.venv/bin/python -m scripts.campaign.lambda_campaign --invocations 1000 --seed 1 \\
    --report docs/reliability.md
```
"""


# Kept at the end of the Lambda report, so regenerating it keeps the links.
OTHER_PLATFORMS = """\
## Vercel and Azure Functions

The same campaign, at a smaller size, runs each platform's real runtime: Vercel's
(`vercel-runtime`, over its IPC socket) in [reliability-vercel.md](reliability-vercel.md),
and the Azure library worker (`azure-functions-runtime`) in
[reliability-azure.md](reliability-azure.md).
"""


def render(
    result: CampaignResult,
    *,
    title: str = TITLE,
    intro: str = INTRO,
    epilogue: str = OTHER_PLATFORMS,
) -> str:
    """The whole document: the introduction, then this run's figures, then ``epilogue``.

    The defaults are the Lambda campaign's page; another platform's campaign passes its own.
    """
    document = f"{title}\n\n{intro}\n{render_results(result)}"
    return f"{document}\n{epilogue}" if epilogue else document


def render_pending() -> str:
    return f"{TITLE}\n\n{INTRO}\n{PENDING}"


def render_results(result: CampaignResult) -> str:
    balance = result.balance
    timings = result.timings
    verdict = "**passed**" if result.ok else "**FAILED**: " + "; ".join(result.problems)
    lines = [
        "## Results",
        "",
        f"The run {verdict}. Reproduce it with:",
        "",
        "```sh",
        result.command,
        "```",
        "",
        f"- platform: {result.platform}",
        f"- seed: {result.seed}; invocations: {result.scheduled_invocations} scheduled "
        f"+ {result.retried_invocations} in faults tried again "
        f"+ {balance.invocations - result.scheduled_invocations - result.retried_invocations} "
        f"final healthy ones = {balance.invocations}",
        f"- function timeout {timings.function_timeout:g} s, flush timeout "
        f"{timings.flush_timeout_ms} ms, flush reserve {timings.flush_reserve_ms} ms, "
        f"collector idle timeout {timings.idle_timeout:g} s",
        f"- wall time: {result.wall_time:.0f} s",
        "",
        "| | |",
        "|---|---:|",
        f"| events tracked | {balance.tracked} |",
        f"| stored by the collector | {balance.stored} |",
        f"| rejected by the server (a 207 the collector sent) | {balance.rejected} |",
        f"| **duplicates** | **{balance.duplicates}** |",
        f"| **lost** | **{balance.lost}** |",
        f"| persisted or logged, then replayed | {_replayed(result)} |",
        f"| of those, stored only by the replay | {_first_replay(result)} |",
        f"| stored by the second replay | {_second_replay(result)} |",
        f"| **missed deadlines caused by the SDK** | **{balance.missed_deadlines}** |",
        f"| minimum margin to the deadline | {_margin(balance.min_margin)} |",
        f"| **API key occurrences** (logs, spool, store) | **{result.leaks.occurrences}** |",
        "",
        "### Faults",
        "",
        "| fault | scheduled | took effect | invocations | the effect seen |",
        "|---|---:|---:|---:|---|",
    ]
    for kind in FaultKind:
        lines.append(
            f"| {kind.value} | {balance.faults_by_kind.get(kind.value, 0)} "
            f"| {balance.effected_by_kind.get(kind.value, 0)} "
            f"| {balance.invocations_by_kind.get(kind.value, 0)} | {EFFECTS[kind].shows} |"
        )
    lines += ["", *_details(result), ""]
    return "\n".join(lines)


def _details(result: CampaignResult) -> list[str]:
    balance = result.balance
    collector = result.collector
    statuses = ", ".join(f"{name} {count}" for name, count in balance.statuses.items())
    by_status = collector.get("requests_by_status", {})
    answers = ", ".join(f"{name} {count}" for name, count in sorted(by_status.items()))
    lines = [
        "### Details",
        "",
        f"- Quantity tracked {balance.tracked_quantity:.0f}; stored {balance.stored_quantity:.0f} "
        f"(beyond the tracked quantity of the events stored: {balance.excess_quantity:.0f}; "
        f"events stored with another quantity: {balance.altered}). Stored ids the campaign "
        f"never tracked: {balance.unexpected_ids}; rows beyond one per id: {balance.extra_rows}.",
        f"- Resent and deduplicated: the collector acknowledged {collector.get('duplicates', 0)} "
        f"event(s) it already held; {balance.resent_batches} event copies arrived again in "
        "batches it stored.",
        f"- Rejected by the server: {balance.rejected}, of which {balance.rejected_confirmed} "
        "refused in a 207 the collector sent (its store's records; the others only in the "
        "SDK's rejection reports, and the run fails on them).",
        f"- Invocations: {statuses}; {balance.cold_starts} cold start(s); "
        f"{balance.deliberate_kills} of {balance.kills_scheduled} invocations meant to be "
        "killed were killed.",
        f"- Collector: {collector.get('requests', 0)} ingest requests ({answers}); "
        f"{collector.get('connections', 0)} connections; "
        f"{collector.get('restarts', 0)} restart(s).",
        f"- Log fallback: the functions printed {result.unsent_log_lines} `doow_unsent` line(s).",
        f"- Key search: {result.leaks.files} file reads (spool files as the run went, logs, "
        f"spool, store) and {result.leaks.texts} captured outputs of the replays.",
    ]
    for index, run in enumerate(result.replays, start=1):
        if run.available:
            fields = ", ".join(
                f"{name} {run.summary[name]}"
                for name in ("found", "unique", "delivered", "rejected", "unsent")
                if name in run.summary
            )
            lines.append(f"- Replay {index}: {fields} (exit {run.returncode}).")
        else:
            lines.append(f"- Replay {index}: not available (exit {run.returncode}).")
    if balance.not_effected:
        lines += ["", "Faults that did not take effect (first ones):", ""]
        lines += [f"- {item}" for item in balance.not_effected]
    if balance.lost_ids:
        lines += ["", "Lost events (first ones):", ""]
        lines += [f"- {item}" for item in balance.lost_ids]
    if balance.missed:
        lines += ["", "Missed deadlines (first ones):", ""]
        lines += [f"- {item}" for item in balance.missed]
    if balance.failed:
        lines += ["", "Invocations that failed unexpectedly (first ones):", ""]
        lines += [f"- {item}" for item in balance.failed]
    if result.leaks.found:
        lines += ["", "API key found in:", ""]
        lines += [f"- {where}: {count}" for where, count in sorted(result.leaks.found.items())]
    lines += [f"- {note}" for note in result.notes]
    return lines


def _replayed(result: CampaignResult) -> str:
    if not result.replays or not result.replays[0].available:
        return "replay not available"
    return str(result.replayed)


def _first_replay(result: CampaignResult) -> str:
    return str(result.stored_by_replay[0]) if result.stored_by_replay else "-"


def _second_replay(result: CampaignResult) -> str:
    if len(result.stored_by_replay) < 2:
        return "-"
    return str(result.stored_by_replay[1])


def _margin(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"

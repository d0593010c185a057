"""The Markdown report of a campaign: a document that the same command regenerates.

A page is one run's results (:func:`render`: the Vercel and Azure pages), or a page of
sections, each written by its own run and kept when another run rewrites the page
(:func:`write_report`: the Lambda page, one section per delivery mode and one for Managed
Instances). Each section sits between two HTML comments naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .evidence import EFFECTS, RETRIES
from .faults import FaultKind
from .forwarding import ANSWER_FIELDS, DeliveryPass, Forwarding
from .replay import ReplayRun
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
  `idempotency_key` the campaign chose, so the campaign knows the id of every event. On
  Lambda, half of the invocations track theirs without a key, as most users do: the SDK
  derives each id from the request id (which the campaign picks) and the event's place. An
  invocation whose process was killed before it answered is sent again with the same
  request id and event, as Lambda retries an asynchronous invocation, in whatever process
  serves it next; its events must be counted once.
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
  the sandboxes are killed and their `/tmp` lost, as a platform reclaims them; the fault
  plan is cleared. What only the logs kept is then **delivered by the forwarder**, as in
  production (`forwarding.py`; the forwarder's section of [lambda.md](lambda.md)):
  each sandbox's log lines that the subscription filter selects (`?doow_unsent ?doow_sent`)
  become CloudWatch Logs subscription payloads in their wire form (the `awslogs` envelope,
  base64 of gzip of the JSON document), several log events each, in log order, each at
  most 10,000 events, 1,048,576 bytes of messages and a 256 KB event; where each ends is
  drawn at random, so a line and its acknowledgement may travel apart. The real forwarder
  (`doow_serverless.forwarders.aws.handler`, under `awslambdaric`, the template's 60 s
  timeout, the collector's endpoint and key in its environment) is invoked with each; an
  invocation that fails is invoked again with the same event, at most twice more, as Lambda
  retries an asynchronous invocation (the waits between attempts are not played), and a
  payload whose every attempt failed goes to the dead-letter queue (a file in the form of
  `aws sqs receive-message --output json`), which alone is then replayed with
  `doow-serverless replay --log`. With no fault left active the queue must stay empty.
  Delivery is at least once: every payload is then delivered a second time, which must
  store nothing new. No spool is read: no one can reach a dead sandbox's. (The Vercel and
  Azure campaigns keep the manual recovery their docs give: the platform's log export,
  replayed twice.)
- The balance: *lost* = tracked − stored − rejected by the server, and must be 0. An event
  counts as rejected only when the collector refused it in an answer it sent (a 207, or a
  413 to a batch of that event alone): the collector records each refusal in its store,
  with whether that answer was sent or a fault replaced it. The SDK's own rejection
  reports (the function prints the ids `on_error` is given) must name no event the
  collector did not refuse. *Duplicates* (stored ids the campaign never tracked, rows
  beyond one per id) must be 0, and every stored quantity must be the tracked one. An
  invocation meant to end in time that did not end before its
  deadline is a *missed deadline*, and there must be none: it ends when it is complete,
  that is answered and, with an extension registered, released by it (the margin is
  measured then). The API key must appear nowhere: not in the logs, the spool files
  (searched after every kill too), the payloads, the dead-letter queue, the forwarder's
  log, the replay's output or the collector's store.
- Each section below is one run: the campaign in each of the SDK's delivery modes for
  classic Lambda (`sync`, the default, and `after-response`), and the Managed Instances
  campaign, whose faults are its own (its section says how it differs). `make reliability`
  reruns them all; each run rewrites its own section only.
"""

# Kept at the end of the Lambda report, so regenerating it keeps the links.
OTHER_PLATFORMS = """\
## Vercel and Azure Functions

The same campaign, at a smaller size, runs each platform's real runtime: Vercel's
(`vercel-runtime`, over its IPC socket) in [reliability-vercel.md](reliability-vercel.md),
and the Azure library worker (`azure-functions-runtime`) in
[reliability-azure.md](reliability-azure.md).
"""


@dataclass(frozen=True)
class Section:
    """A part of a page that one run writes: between its markers, a heading, a lead (what
    is particular to this run), the results."""

    key: str
    heading: str
    lead: str = ""

    @property
    def begins(self) -> str:
        return f"<!-- campaign: {self.key} -->"

    @property
    def ends(self) -> str:
        return f"<!-- /campaign: {self.key} -->"


@dataclass(frozen=True)
class Page:
    title: str
    intro: str
    epilogue: str = ""
    sections: tuple[Section, ...] = ()  # none: the page holds one run's results

    def section(self, key: str) -> Section:
        for section in self.sections:
            if section.key == key:
                return section
        raise KeyError(key)


def render(
    result: CampaignResult,
    *,
    title: str = TITLE,
    intro: str = INTRO,
    epilogue: str = OTHER_PLATFORMS,
) -> str:
    """A page of one run: the introduction, then this run's figures, then ``epilogue``."""
    document = f"{title}\n\n{intro}\n{render_results(result)}"
    return f"{document}\n{epilogue}" if epilogue else document


def write_report(path: Path, result: CampaignResult, page: Page, key: str | None = None) -> str:
    """Write ``result`` to ``path``: the whole page, or (``key``) its section of ``page``,
    keeping the other sections already there. The text written."""
    if key is None:
        text = render(result, title=page.title, intro=page.intro, epilogue=page.epilogue)
    else:
        kept = _sections_in(path.read_text(encoding="utf-8") if path.exists() else "", page)
        kept[key] = render_section(result, page.section(key))
        text = render_page(page, kept)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text


def render_page(page: Page, sections: dict[str, str]) -> str:
    """The page with the given sections' texts; the others say they are still to be run."""
    parts = [f"{page.title}\n\n{page.intro}"]
    for section in page.sections:
        parts.append(sections.get(section.key) or _pending(section))
    if page.epilogue:
        parts.append(page.epilogue)
    return "\n".join(parts)


def render_section(result: CampaignResult, section: Section) -> str:
    lead = f"{section.lead}\n" if section.lead else ""
    body = render_results(result, heading=f"{section.heading}\n\n{lead}".rstrip("\n"))
    return f"{section.begins}\n{body}\n{section.ends}\n"


def _pending(section: Section) -> str:
    return (
        f"{section.begins}\n{section.heading}\n\nNot run yet: `make reliability` writes this "
        f"section.\n{section.ends}\n"
    )


def _sections_in(text: str, page: Page) -> dict[str, str]:
    """The sections of ``page`` found in ``text``, each with its markers."""
    found = {}
    for section in page.sections:
        pattern = re.escape(section.begins) + r".*?" + re.escape(section.ends) + r"\n?"
        match = re.search(pattern, text, flags=re.DOTALL)
        if match:
            found[section.key] = match.group(0).rstrip("\n") + "\n"
    return found


def render_results(result: CampaignResult, heading: str = "## Results") -> str:
    balance = result.balance
    timings = result.timings
    verdict = "**passed**" if result.ok else "**FAILED**: " + "; ".join(result.problems)
    setup = [f"- delivery: `{result.delivery}` (`DOOW_TRACK_DELIVERY`)"] if result.delivery else []
    resent = result.resent_invocations
    final = balance.invocations - result.scheduled_invocations - result.retried_invocations
    final -= resent
    sent_again = f"+ {resent} sent again by the caller (same request id) " if resent else ""
    lines = [
        heading,
        "",
        f"The run {verdict}. Reproduce it with:",
        "",
        "```sh",
        result.command,
        "```",
        "",
        f"- platform: {result.platform}",
        *setup,
        f"- seed: {result.seed}; invocations: {result.scheduled_invocations} scheduled "
        f"+ {result.retried_invocations} in faults tried again {sent_again}"
        f"+ {final} final healthy ones = {balance.invocations}",
        f"- function timeout {timings.function_timeout:g} s, flush timeout "
        f"{timings.flush_timeout_ms} ms, flush reserve {timings.flush_reserve_ms} ms, "
        f"collector idle timeout {timings.idle_timeout:g} s",
        f"- wall time: {result.wall_time:.0f} s",
        "",
        "| | |",
        "|---|---:|",
        f"| events tracked | {balance.tracked} |",
        f"| stored by the collector | {balance.stored} |",
        f"| rejected by the server (refused in an answer the collector sent) | "
        f"{balance.rejected} |",
        f"| **duplicates** | **{balance.duplicates}** |",
        f"| **lost** | **{balance.lost}** |",
        *_recovery_rows(result),
        f"| **missed deadlines caused by the SDK** | **{balance.missed_deadlines}** |",
        f"| minimum margin to the deadline | {_margin(balance.min_margin)} |",
        f"| **API key occurrences** (logs, spool, store) | **{result.leaks.occurrences}** |",
        "",
        "### Faults",
        "",
        "| fault | scheduled | took effect | invocations | the effect seen |",
        "|---|---:|---:|---:|---|",
    ]
    for value, scheduled in balance.faults_by_kind.items():
        lines.append(
            f"| {value} | {scheduled} "
            f"| {balance.effected_by_kind.get(value, 0)} "
            f"| {balance.invocations_by_kind.get(value, 0)} | {EFFECTS[FaultKind(value)].shows} |"
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
        "refused in an answer the collector sent (its store's records; the others only in the "
        "SDK's rejection reports, and the run fails on them).",
        f"- Invocations: {statuses}; {balance.cold_starts} cold start(s); "
        f"{balance.deliberate_kills} of {balance.kills_scheduled} invocations meant to be "
        f"killed were killed; {balance.killed_after_answer} were killed after they answered, "
        "before they were complete.",
        f"- Collector: {collector.get('requests', 0)} ingest requests ({answers}); "
        f"{collector.get('connections', 0)} connections; "
        f"{collector.get('restarts', 0)} restart(s).",
        f"- Log fallback: the functions printed {result.unsent_log_lines} `doow_unsent` line(s).",
        f"- Key search: {result.leaks.files} file reads (spool files as the run went, logs, "
        f"spool, exports or payloads, store) and {result.leaks.texts} captured outputs "
        f"({'the forwarder and its replays' if result.forwarding else 'the replays'}).",
    ]
    lines += [f"- {fact}" for fact in result.facts]
    if result.forwarding is not None:
        lines += _forwarding_details(result.forwarding)
    for index, run in enumerate(result.replays, start=1):
        lines.append(f"- Replay {index}: {_replay_run(run)}.")
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


def _recovery_rows(result: CampaignResult) -> list[str]:
    """The table's rows of the recovery: the forwarder's, or the replays'."""
    forwarding = result.forwarding
    if forwarding is not None:
        first, again = forwarding.first, forwarding.again
        return [
            f"| logged, then **delivered by the forwarder** (and its dead-letter queue's "
            f"replay) | {result.replayed} |",
            f"| of those, stored only by the forwarder | {forwarding.stored} |",
            f"| subscription payloads / forwarder invocations / retries | {first.payloads} / "
            f"{first.invocations} / {first.retries} |",
            f"| **payloads sent to the dead-letter queue** | **{forwarding.dead_lettered}** |",
            f"| stored by delivering every payload again | {again.stored} |",
        ]
    replayed = str(result.replayed) if result.recovered else "replay not available"
    stored = result.stored_by_replay
    return [
        f"| persisted or logged, then replayed | {replayed} |",
        f"| of those, stored only by the replay | {stored[0] if stored else '-'} |",
        f"| stored by the second replay | {stored[1] if len(stored) > 1 else '-'} |",
    ]


def _forwarding_details(forwarding: Forwarding) -> list[str]:
    first, again = forwarding.first, forwarding.again
    streams = ", ".join(f"{name} {count}" for name, count in forwarding.payloads_by_stream.items())
    lines = [
        f"- Forwarder: {first.payloads} subscription payloads ({streams}; the largest "
        f"{forwarding.largest_payload} bytes as invoked), {first.invocations} invocations "
        f"({first.retries} retries), {first.dead_lettered} to the dead-letter queue; its "
        f"answers: {_answers(first)}.",
        f"- Delivered again (every payload): {again.invocations} invocations ({again.retries} "
        f"retries), {again.dead_lettered} to the dead-letter queue, {again.stored} event(s) "
        f"newly stored; its answers: {_answers(again)}.",
    ]
    if forwarding.dead_letter_replay is not None:
        lines.append(
            f"- The dead-letter queue replayed: {_replay_run(forwarding.dead_letter_replay)}, "
            f"{forwarding.stored_by_dead_letter_replay} newly stored."
        )
    lines += [f"- Failed forwarder invocation: {failure}" for failure in first.failures]
    lines += [f"- Failed forwarder invocation (again): {failure}" for failure in again.failures]
    return lines


def _answers(delivery: DeliveryPass) -> str:
    return ", ".join(f"{name} {delivery.answers[name]}" for name in ANSWER_FIELDS)


def _replay_run(run: ReplayRun) -> str:
    if not run.available:
        return f"not available (exit {run.returncode})"
    fields = ", ".join(
        f"{name} {run.summary[name]}"
        for name in ("found", "unique", "delivered", "rejected", "unsent")
        if name in run.summary
    )
    return f"{fields} (exit {run.returncode})"


def _margin(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


SYNC_LEAD = """\
`DOOW_TRACK_DELIVERY=sync` (the default on classic Lambda): each invocation's flush runs in
the handler's wrapper, before the response goes back."""

AFTER_RESPONSE_LEAD = """\
`DOOW_TRACK_DELIVERY=after-response` in every sandbox: the handler's wrapper keeps the
events (log line, spool) and returns at once; the SDK's internal extension flushes them in
its turn, after the runtime posted the response, with the budget the synchronous flush
would have had, and only then asks for its next event. Lambda counts the invocation as
complete (billed; the next invocation may start; the environment may be frozen) only then.
The same faults, in that light:

- every deadline counts from the invocation's completion, not its response: the margin is
  measured when the extension released the invocation, and one the extension held past its
  deadline is a missed deadline;
- "SIGKILL while a request hangs" and "SIGKILL at a random moment of the flush" now kill
  the process after the caller had its answer, before the invocation was complete;
- "killed at the deadline mid-flush" is Lambda ending the environment because the
  extension had not released the invocation by its deadline (the caller had its answer:
  the invocation counts as timed out all the same, and the next one starts a new process);
- the "stale keep-alive" freeze comes once the extension has released the invocation;
  "usage tracked inside the reserve" leaves the extension no time to send: the events go
  by their log line and spool file, and the invocation is complete inside the reserve."""

MANAGED_LEAD = """\
Lambda Managed Instances run several invocations at once in one execution environment:
the runtime client forks `AWS_LAMBDA_MAX_CONCURRENCY` worker processes sharing `/tmp`;
nothing is frozen, a deadline kills nothing, and the environment ends with SIGTERM, then
SIGKILL. The SDK detects the mode and delivers in the background: each invocation's events
are kept (log line, spool) before its response, then a thread of the worker sends them. A
driver of its own (`scripts/campaign/managed_campaign.py`, faults in `managed_faults.py`)
runs the campaign function there, with the same collector, evidence, recovery and balance:

- One environment at a time: `LocalFunction(concurrency=N)` runs the function under the
  real runtime client (`awslambdaric` forking its workers), `TMPDIR` being the
  environment's `/tmp`; the harness plays the platform's log socket, so each worker's
  output is read apart. Invocations go in bursts of 4 to 12 sent at once from a thread
  pool, one fault per burst.
- Endpoint faults are the classic campaign's collector plans (5xx, some after storing;
  429 with a short `Retry-After`; connection refused; resets, before and after storing;
  latency; a hang; 207 partial rejections, by the plan or for an unknown license; 413),
  met by the workers' sender threads after the responses.
- Process faults: a SIGKILL of a random live worker at a random moment of a burst (in its
  handler, its wrapper, its sender's request, or idle); a SIGKILL of a worker that answered
  in the burst once every live worker's request hangs at the collector; an invocation that
  works past its deadline (it answers late; nothing kills it); environment shutdowns
  (SIGTERM to every process, SIGKILL after a grace of 0.3 to 2 s) once the senders'
  requests are in flight, the next environment starting with `/tmp` kept (it adopts the
  spool) or lost (only the log is left); and a shutdown while handlers work, after they
  tracked their events, the next `/tmp` kept or lost at random. An environment left with
  fewer than two live workers is replaced (SIGTERM, `/tmp` kept).
- The platform's part: an invocation whose worker was SIGKILLed never answers, and the
  campaign sends it again with the same request id, as Lambda retries a failed
  asynchronous invocation (its events get the same ids). A crash where no worker was
  killed fails the run. An invocation a shutdown cut after its handler tracked is not sent
  again: what it tracked must survive on the SDK's own (one cut before it tracked, or never
  handed out, is sent again).
- At the end the last environment is shut down and every `/tmp` lost. The recovery is the
  forwarder's, as on classic Lambda: each environment's log in Lambda's JSON log format
  (every line a record with a request id; the workers' lines arrive merged, so a record
  carries the request id of an invocation then in progress, or none), one log stream per
  environment, its selected records delivered to the forwarder as subscription payloads.
  No spool is read. A deadline is missed when an invocation meant to answer in time
  answered after it: nothing the sender does may hold a response back."""

SYNC_SECTION = Section("lambda-sync", "## Results: classic Lambda, `sync` delivery", SYNC_LEAD)
AFTER_RESPONSE_SECTION = Section(
    "lambda-after-response",
    "## Results: classic Lambda, `after-response` delivery",
    AFTER_RESPONSE_LEAD,
)
MANAGED_SECTION = Section("lambda-managed", "## Results: Lambda Managed Instances", MANAGED_LEAD)
LAMBDA_PAGE = Page(
    TITLE, INTRO, OTHER_PLATFORMS, (SYNC_SECTION, AFTER_RESPONSE_SECTION, MANAGED_SECTION)
)

"""The recovery of lost sandboxes on AWS as production runs it: the forwarder.

What a sandbox's log kept reaches Doow in production without anyone running ``replay``:
the subscription filter of ``template.yaml`` (pattern ``?doow_unsent ?doow_sent``) hands
the matching log events to the forwarder function (``doow_serverless.forwarders.aws.handler``)
as CloudWatch Logs delivers them, and Lambda retries a delivery the forwarder failed,
then keeps it in the function's dead-letter queue. The campaign plays that:

- each log's selected lines (``exports.selected``) become subscription payloads in their
  real wire form (``lambda_local.subscription_events``: several log events to a payload, in
  log order, within CloudWatch's and Lambda's limits; where a payload ends is drawn from a
  seeded random source, as a real one depends on when lines were ingested, so a
  write-ahead line and its acknowledgement may travel apart);
- the forwarder runs under the real runtime client (``LocalFunction``), with the template's
  timeout, the collector's endpoint and key in its environment and its log at INFO (the
  account it gives of each delivery, searched for the key), and is invoked with
  each payload in turn; an invocation that fails (it raised, crashed or timed out) is
  invoked again with the same event and request id, at most ``ASYNC_RETRIES`` more times
  (the template's ``MaximumRetryAttempts``; Lambda's waits between attempts are not
  played), and what still fails is kept as the dead-letter queue keeps it: a message whose
  body is the event, as ``aws sqs receive-message --output json`` prints it;
- only the dead-letter queue is then replayed, with ``doow-serverless replay --log``, as
  docs/lambda.md tells users;
- a subscription delivers at least once: every payload is delivered a second time, and
  that second delivery must store nothing new.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from doow_serverless_dev.lambda_local import (
    InvocationResult,
    LocalFunction,
    dead_letter_export,
    subscription_events,
)

from .endpoint import Endpoint
from .exports import selected
from .replay import ReplayRun, replay

REPO = Path(__file__).resolve().parents[2]
FORWARDER_HANDLER = "doow_serverless.forwarders.aws.handler"
FORWARDER_DIR = REPO / "examples" / "lambda_forwarder"  # no code of its own: the package's
# template.yaml's DoowForwarderFunction: Timeout, and EventInvokeConfig's MaximumRetryAttempts.
FORWARDER_TIMEOUT_S = 60.0
ASYNC_RETRIES = 2
# At most this many log events in one payload (at least 1), drawn for each payload in turn.
MOST_EVENTS = (1, 50)
# The forwarder's answers summed over a pass (ReplaySummary's fields).
ANSWER_FIELDS = ("found", "answered", "delivered", "rejected", "unsent", "invalid")
_KEPT_FAILURES = 5


class LogStream(NamedTuple):
    """One execution environment's log (``name``: the campaign's, for its report): its
    group, its stream, every line it printed."""

    name: str
    log_group: str
    log_stream: str
    lines: list[str]


class Payload(NamedTuple):
    """One subscription delivery: the name of the log it comes from, the event as invoked."""

    stream: str
    event: dict[str, Any]

    @property
    def size(self) -> int:
        return len(json.dumps(self.event))


@dataclass
class DeliveryPass:
    """Every payload delivered once to the forwarder, and what came of it."""

    payloads: int = 0
    invocations: int = 0  # attempts, retries included
    retries: int = 0
    dead_lettered: int = 0  # payloads whose every attempt failed
    stored: int = 0  # events the collector newly stored during the pass
    # The forwarder's counts, summed (a plain dict: dataclasses.asdict mangles a Counter).
    answers: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ANSWER_FIELDS, 0))
    failures: list[str] = field(default_factory=list)  # the first failed attempts, described


@dataclass(frozen=True)
class Forwarding:
    """The whole recovery through the forwarder."""

    payloads_by_stream: dict[str, int]
    largest_payload: int  # bytes of the largest event the forwarder was invoked with
    first: DeliveryPass
    again: DeliveryPass  # every payload delivered a second time (at least once)
    dead_letter_replay: ReplayRun | None  # replay --log of the dead-letter queue, if any
    stored_by_dead_letter_replay: int
    output: list[str]  # the forwarder's own log

    @property
    def payloads(self) -> int:
        return self.first.payloads

    @property
    def dead_lettered(self) -> int:
        return self.first.dead_lettered + self.again.dead_lettered

    @property
    def delivered(self) -> int:
        """Events the forwarder (and the replay of its dead-letter queue) delivered."""
        replayed = self.dead_letter_replay.count("delivered") if self.dead_letter_replay else 0
        return self.first.answers["delivered"] + replayed

    @property
    def stored(self) -> int:
        """Events stored only by this recovery (before the second delivery)."""
        return self.first.stored + self.stored_by_dead_letter_replay


def log_stream(name: str, function: str, lines: list[str]) -> LogStream:
    """``lines`` as a new log stream of the Lambda function ``function`` keeps them (named
    as Lambda names an execution environment's)."""
    stream = "2026/12/04/[$LATEST]" + uuid.uuid4().hex
    return LogStream(name, f"/aws/lambda/{function}", stream, lines)


def payloads(streams: Sequence[LogStream], rng: random.Random) -> list[Payload]:
    """Each stream's selected lines as CloudWatch Logs delivers them: stream by stream."""
    made = []
    for stream in streams:
        messages = [line + "\n" for line in selected(stream.lines)]
        counts = iter(lambda: rng.randint(*MOST_EVENTS), None)
        events = subscription_events(
            messages, counts=counts, log_group=stream.log_group, log_stream=stream.log_stream
        )
        made += [Payload(stream.name, event) for event in events]
    return made


class ForwarderPath:
    """The forwarder function and what Lambda does around it, for one campaign's logs."""

    def __init__(
        self,
        endpoint: Endpoint,
        api_key: str,
        workdir: Path,
        *,
        timeout: float = FORWARDER_TIMEOUT_S,
    ) -> None:
        self._endpoint = endpoint
        self._api_key = api_key
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.dead_letter_path = workdir / "dead-letter-queue.json"
        self._dead_letters: list[tuple[dict[str, Any], str]] = []
        self._function = LocalFunction(
            FORWARDER_HANDLER,
            code_dir=FORWARDER_DIR,
            timeout=timeout,
            environment={
                "DOOW_TRACK_API_KEY": api_key,
                "DOOW_TRACK_ENDPOINT": endpoint.url,
                # Lambda's logging controls: the forwarder's account of each delivery (INFO)
                # is kept in its log, which the campaign searches for the key.
                "AWS_LAMBDA_LOG_FORMAT": "JSON",
                "AWS_LAMBDA_LOG_LEVEL": "INFO",
            },
            function_name="doow-campaign-forwarder",
        )

    @property
    def output(self) -> list[str]:
        return list(self._function.output)

    def recover(self, streams: Sequence[LogStream], rng: random.Random) -> Forwarding:
        """Deliver every stream's payloads, replay the dead-letter queue, deliver again."""
        made = payloads(streams, rng)
        (self.workdir / "payloads.jsonl").write_text(
            "".join(json.dumps(payload.event) + "\n" for payload in made), encoding="utf-8"
        )
        first = self.deliver(made)
        dead_letter_replay, stored_by_replay = self.replay_dead_letters()
        again = self.deliver(made)
        by_stream = Counter(payload.stream for payload in made)
        return Forwarding(
            payloads_by_stream={stream.name: by_stream[stream.name] for stream in streams},
            largest_payload=max((payload.size for payload in made), default=0),
            first=first,
            again=again,
            dead_letter_replay=dead_letter_replay,
            stored_by_dead_letter_replay=stored_by_replay,
            output=self.output,
        )

    def deliver(self, made: Sequence[Payload]) -> DeliveryPass:
        """Each payload to the forwarder, retried as Lambda retries an asynchronous
        invocation; those that still fail go to the dead-letter queue (its file)."""
        delivery = DeliveryPass(payloads=len(made))
        before = self._endpoint.stored()
        for payload in made:
            self._deliver_one(payload, delivery)
        delivery.stored = self._endpoint.stored() - before
        self._write_dead_letters()
        return delivery

    def _deliver_one(self, payload: Payload, delivery: DeliveryPass) -> None:
        request_id = str(uuid.uuid4())  # Lambda's retries of an event keep its request id
        why = ""
        for attempt in range(1 + ASYNC_RETRIES):
            result = self._function.invoke(payload.event, request_id=request_id)
            delivery.invocations += 1
            delivery.retries += attempt > 0
            if result.ok and isinstance(result.payload, dict):
                for name in ANSWER_FIELDS:
                    delivery.answers[name] += int(result.payload.get(name, 0))
                return
            why = _failure(result)
            if len(delivery.failures) < _KEPT_FAILURES:
                delivery.failures.append(f"{payload.stream}, attempt {attempt + 1}: {why}")
        delivery.dead_lettered += 1
        self._dead_letters.append((payload.event, why))

    def _write_dead_letters(self) -> None:
        """The queue as ``aws sqs receive-message --output json`` prints it."""
        messages = [
            message
            for event, why in self._dead_letters
            for message in dead_letter_export([event], error_message=why)["Messages"]
        ]
        self.dead_letter_path.write_text(
            json.dumps({"Messages": messages}, indent=2) + "\n", encoding="utf-8"
        )

    def replay_dead_letters(self) -> tuple[ReplayRun | None, int]:
        """``replay --log`` over the dead-letter queue, when it holds anything: the run,
        and the events it newly stored."""
        if not self._dead_letters:
            return None, 0
        before = self._endpoint.stored()
        run = replay(
            endpoint=self._endpoint.url,
            api_key=self._api_key,
            spools=[],
            logs=[self.dead_letter_path],
        )
        if run.returncode == 0:
            self._dead_letters.clear()  # deleted from the queue once replay exits 0
            self._write_dead_letters()
        return run, self._endpoint.stored() - before

    def close(self) -> None:
        self._function.stop()
        (self.workdir / "output.log").write_text(
            "".join(line + "\n" for line in self._function.output), encoding="utf-8"
        )


def _failure(result: InvocationResult) -> str:
    """A failed invocation, as Lambda's ErrorMessage attribute would say it."""
    payload = result.payload
    message = payload.get("errorMessage", "") if isinstance(payload, dict) else ""
    return f"{result.status} ({result.error_type}): {str(message)[:300]}".strip()

"""``doow-serverless replay``: send again what a spool or log lines kept, with the same ids.

Sources are a spool directory (the batches of processes that are no longer alive; a live
process's share is left to it) and logs holding the SDK's lines, in any form a platform
exports or delivers them (see ``_durability.lines``): a file, or the messages a forwarder
was handed by the platform's log pipeline. Every event is checked as the server would
check it, sent once however many sources hold it, and keeps its ``event_id``: the server
counts an event it already has as a duplicate, so replaying twice stores nothing twice.
Events of a line that a later line says was answered for are not sent again.

The sending is the tracker's own engine (:class:`~.sender.Sender`), without a spool or
log lines of its own and with a queue as large as the sources.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from .._core.config import TrackerConfig, redact, resolve_config
from .._core.constants import LOGGER_NAME
from .._core.deadline import Deadline
from .._core.errors import DoowError
from .._core.wire import encoding_problem, read_event
from .._delivery.outbox import Outbox, pack_documents
from .._delivery.transport import HttpTransport, Transport
from .._durability.lines import read_log
from .._durability.spool import Spool, SpoolUnavailable, owner_is_alive, parse_batch_body
from .sender import Sender

logger = logging.getLogger(LOGGER_NAME)

# A replay may hold a whole outage's worth of events.
_REPLAY_QUEUE = 10_000_000


class ReplaySummary(NamedTuple):
    found: int  # event documents read, with repeats
    unique: int  # distinct event ids among the valid ones
    invalid: int  # documents the server would refuse, or lines that cannot be read
    delivered: int
    rejected: int  # refused for good by the server (reported)
    unsent: int  # still not delivered: the sources keep them for the next replay
    answered: int = 0  # events of lines answered for already (not sent again)

    def as_dict(self) -> dict[str, int]:
        return self._asdict()


class ReplayError(Exception):
    """A source that cannot be read, or settings that cannot send; the message says which."""


class _Collected:
    """Unique valid event documents, in the order found."""

    def __init__(self) -> None:
        self.found = 0
        self.invalid = 0
        self.answered = 0
        self.documents: dict[str, dict[str, Any]] = {}

    def add(self, documents: Iterable[object], source: str) -> None:
        for document in documents:
            self.found += 1
            problem = _problem(document)
            if problem is not None:
                self.unreadable(source, f"an event is skipped: {problem}")
                continue
            assert isinstance(document, dict)
            self.documents.setdefault(document["event_id"], document)

    def add_log(self, name: str, lines: Iterable[str]) -> None:
        contents = read_log(lines)
        events = contents.unanswered_events()
        self.answered += sum(len(record.events) for record in contents.records) - len(events)
        self.add(events, name)
        for number in contents.unreadable:
            self.unreadable(f"{name}:{number}", "a line of the SDK's that cannot be read")

    def unreadable(self, source: str, problem: str) -> None:
        self.invalid += 1
        if self.invalid <= 5:
            logger.warning("doow-serverless: %s: %s", source, problem)


def _problem(document: object) -> str | None:
    """Why the server would refuse this event, or could not be sent it; None if neither.
    A valid document gets its canonical event id."""
    try:
        checked = read_event(document)
    except (ValueError, TypeError, RecursionError) as exc:
        return f"cannot be read ({exc})"
    if isinstance(checked, str):
        return checked
    assert isinstance(document, dict)
    problem = encoding_problem(document)  # NaN, say, passes JSON parsing but not encoding
    if problem is not None:
        return problem
    document["event_id"] = checked.event_id
    return None


def replay_config(
    settings: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> TrackerConfig:
    """Settings for replaying (``api_key``, ``endpoint``, ...: the tracker's names): no spool
    or log lines of its own, a queue without bound. Raises ReplayError when nothing could
    be sent with them."""
    config = resolve_config(
        os.environ if environ is None else environ,
        **settings,
        spool=False,
        log_unsent=False,
        log_ahead=False,
        max_queue_size=_REPLAY_QUEUE,
    )
    for warning in config.warnings:
        logger.warning("doow-serverless: %s", warning)
    if config.send_blocker:
        raise ReplayError(f"nothing can be sent: {config.send_blocker}")
    return config


def replay(
    config: TrackerConfig,
    *,
    spools: Iterable[str | Path] = (),
    logs: Iterable[tuple[str, Iterable[str]]] = (),
    timeout: float,
    transport: Transport | None = None,
) -> ReplaySummary:
    """Send every event the sources hold within ``timeout`` seconds; spool files go once
    everything they held is delivered or refused. ``logs``: (name, lines) pairs, a file
    open for reading being lines. A ``transport`` given is left open for the caller to
    use again (a forwarder keeps its connection across invocations)."""
    collected = _Collected()
    opened: list[tuple[Spool, list[str]]] = []
    outbox = Outbox(config.max_queue_size)

    def report(error: DoowError, level: int) -> None:
        logger.log(level, "doow-serverless: %s", redact(str(error), config.api_key))

    sender = Sender(
        config,
        transport if transport is not None else HttpTransport(),
        outbox,
        report=report,
        serverless=False,
    )
    try:
        for directory in spools:
            if not Path(directory).is_dir():
                raise ReplayError(f"spool directory {directory} does not exist")
            spool = Spool(directory, max_bytes=2**62)
            try:
                batches = spool.open()
            except SpoolUnavailable as exc:
                raise ReplayError(str(exc)) from None
            opened.append((spool, [batch.name for batch in batches]))
            for batch in batches:
                collected.add(batch.documents, batch.path)
            for path in spool.set_aside:
                collected.unreadable(path, "not a batch; set aside")
        for name, stream in logs:
            collected.add_log(name, stream)
        sender.adopt(pack_documents(list(collected.documents.values())))
        sender.flush(Deadline(timeout))
        counts = outbox.counts()
        if counts.pending == 0:
            for spool, names in opened:
                for name in names:
                    spool.discard(name)
        return ReplaySummary(
            found=collected.found,
            unique=len(collected.documents),
            invalid=collected.invalid,
            delivered=counts.delivered,
            rejected=counts.rejected,
            unsent=counts.pending,
            answered=collected.answered,
        )
    finally:
        for spool, _ in opened:
            spool.close()  # what is left is adopted by the next replay
        sender.stop_waiting()
        sender.close(keep_transport=transport is not None)


def preview(
    *, spools: Iterable[str | Path] = (), logs: Iterable[tuple[str, Iterable[str]]] = ()
) -> ReplaySummary:
    """What a replay would send, read without claiming or changing anything."""
    collected = _Collected()
    for directory in spools:
        for path in _spool_files(Path(directory)):
            batch = parse_batch_body(path.read_bytes(), path)
            if batch is None:
                collected.unreadable(str(path), "not a batch")
            else:
                collected.add(batch.documents, str(path))
    for name, stream in logs:
        collected.add_log(name, stream)
    unique = len(collected.documents)
    return ReplaySummary(
        collected.found, unique, collected.invalid, 0, 0, unique, collected.answered
    )


def _spool_files(base: Path) -> Iterator[Path]:
    """The batch files a replay would adopt: those of processes no longer running."""
    if not base.is_dir():
        raise ReplayError(f"spool directory {base} does not exist")
    for owner in sorted(base.iterdir()):
        if owner.is_dir() and not owner.name.startswith(".") and not owner_is_alive(owner):
            yield from sorted(owner.glob("*.json"))

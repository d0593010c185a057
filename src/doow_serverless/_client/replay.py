"""``doow-serverless replay``: send again what a spool or log lines kept, with the same ids.

Sources are a spool directory (the batches of processes that are no longer alive; a live
process's share is left to it) and log files holding unsent-event lines. Every event is
checked as the server would check it, sent once however many sources hold it, and keeps
its ``event_id``: the server counts an event it already has as a duplicate, so replaying
twice stores nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

from .._core import constants as C
from .._core.wire import encode_batch, read_event
from .._delivery.outbox import pack_documents
from .._durability.lines import read_unsent
from .._durability.spool import Spool, SpoolUnavailable, owner_is_alive, parse_batch_body
from .tracker import DoowTracker

logger = logging.getLogger(C.LOGGER_NAME)

# A replay may hold a whole outage's worth of events.
_REPLAY_QUEUE = 10_000_000


class ReplaySummary(NamedTuple):
    found: int  # event documents read, with repeats
    unique: int  # distinct event ids among the valid ones
    invalid: int  # documents the server would refuse (reported, not sent)
    delivered: int
    rejected: int  # refused for good by the server (reported)
    unsent: int  # still not delivered: the sources keep them for the next replay

    def as_dict(self) -> dict[str, int]:
        return self._asdict()


class _Collected:
    """Unique valid event documents, in the order found."""

    def __init__(self) -> None:
        self.found = 0
        self.invalid = 0
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

    def add_log(self, name: str, stream: IO[str]) -> None:
        lines: list[int] = []
        self.add(read_unsent(stream, lines), name)
        for number in lines:
            self.unreadable(f"{name}:{number}", "an unsent-event line that cannot be read")

    def unreadable(self, source: str, problem: str) -> None:
        self.invalid += 1
        if self.invalid <= 5:
            logger.warning("doow-serverless: %s: %s", source, problem)


def _problem(document: object) -> str | None:
    """Why the server would refuse this event, or could not be sent it; None if neither.
    A valid document gets its canonical event id."""
    try:
        checked = read_event(document)
        if isinstance(checked, str):
            return checked
        assert isinstance(document, dict)
        encode_batch("", [document])  # NaN, say, passes JSON parsing but not encoding
    except (ValueError, TypeError, RecursionError) as exc:
        return f"cannot be encoded ({exc})"
    document["event_id"] = checked.event_id
    return None


def replay(
    tracker: DoowTracker,
    *,
    spools: Iterable[str | Path] = (),
    logs: Iterable[tuple[str, IO[str]]] = (),
    timeout: float,
) -> ReplaySummary:
    """Send every event the sources hold within ``timeout`` seconds; spool files go once
    everything they held is delivered or refused."""
    collected = _Collected()
    opened: list[tuple[Spool, list[str]]] = []
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
        tracker._resend(pack_documents(list(collected.documents.values())))
        tracker.flush(timeout)
        stats = tracker.stats()
        if stats.pending == 0:
            for spool, names in opened:
                for name in names:
                    spool.discard(name)
        return ReplaySummary(
            found=collected.found,
            unique=len(collected.documents),
            invalid=collected.invalid,
            delivered=stats.delivered,
            rejected=stats.rejected,
            unsent=stats.pending,
        )
    finally:
        for spool, _ in opened:
            spool.close()  # what is left is adopted by the next replay
        tracker._shutdown(0, hand_over=False)


def preview(
    *, spools: Iterable[str | Path] = (), logs: Iterable[tuple[str, IO[str]]] = ()
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
    return ReplaySummary(collected.found, unique, collected.invalid, 0, 0, unique)


def replay_tracker(**settings: Any) -> DoowTracker:
    """A tracker for replaying: no spool or log lines of its own, a queue without bound."""
    return DoowTracker(
        spool=False, log_unsent=False, max_queue_size=_REPLAY_QUEUE, strict=True, **settings
    )


def _spool_files(base: Path) -> Iterator[Path]:
    """The batch files a replay would adopt: those of processes no longer running."""
    if not base.is_dir():
        raise ReplayError(f"spool directory {base} does not exist")
    for owner in sorted(base.iterdir()):
        if owner.is_dir() and not owner.name.startswith(".") and not owner_is_alive(owner):
            yield from sorted(owner.glob("*.json"))


class ReplayError(Exception):
    """A source that cannot be read; the message names it."""

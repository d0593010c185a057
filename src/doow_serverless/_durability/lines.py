"""Log lines: events kept where they outlive the process and its disk, and read back.

One JSON object per line on stdout, which every platform keeps (CloudWatch Logs, Vercel's
runtime logs, Application Insights), so ``doow-serverless replay`` or a forwarder can send
the events later with the same ids. Two kinds of line, neither carrying the key::

    {"doow_unsent":{"v":1,"batch_id":"…","reason":"…","events":[{…}, …]}}
    {"doow_sent":{"v":1,"batch_ids":["…", …]}}

The first holds a batch's events: written before the batch's first request on a
serverless platform (write-ahead), or when the batch could not be delivered. The second
says that every event of the listed lines was answered for by the server (delivered, or
refused for good), so a replay of the same log sends those again for nothing.

Lines are kept under 60 KB of UTF-8, whatever the batch: CloudWatch cuts a log event at
256 KB and other log pipelines at less, and a cut line loses every event in it. (One
event alone, at the most validation allows, stays under 256 KB.) Text is written as
UTF-8, not escaped, since an escaped emoji takes 12 bytes; where stdout cannot encode it,
the lines are written escaped instead. Each line is its own ``write()``: Vercel's runtime
makes each write one log message.

Reading finds every record on a line, however the log pipeline wrapped it: after a
prefix (a timestamp and request id), several on one line (``aws logs ... --output text``
joins messages with tabs), inside JSON strings (a JSON export, Lambda's JSON log format,
a Vercel log drain; escaped once or more), or in a CSV field (quotes doubled). Lines
may also hold CloudWatch Logs subscription payloads (base64 of gzip, as a forwarder is
invoked with them and a dead-letter queue or an on-failure destination keeps them): each is
opened (``envelopes``) and its log events read the same way.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any, NamedTuple

from .._core.wire import JSON_ASCII, JSON_UTF8
from .envelopes import AWSLOGS_KEY, EnvelopeError, find_awslogs

MARKER = "doow_unsent"
ACK_MARKER = "doow_sent"
FORMAT_VERSION = 1
MAX_LINE_BYTES = 60_000
MAX_REASON_CHARS = 300


# -- writing ----------------------------------------------------------------------------


def unsent_lines(
    batch_id: str,
    documents: Sequence[dict[str, Any]] | None,
    reason: str,
    *,
    ascii_only: bool = False,
    encoded: Sequence[str] | None = None,
) -> list[str]:
    """The log lines for one batch: as few as fit under the line limit, events in order.

    ``encoded``: each document's compact UTF-8 JSON, when the caller has it already (then
    ``documents`` may be None: they are read back from it if the lines must be escaped).
    """
    encoder = JSON_ASCII if ascii_only else JSON_UTF8
    if encoded is not None and not ascii_only:
        texts: Sequence[str] = encoded
    else:
        if documents is None:
            assert encoded is not None, "unsent_lines needs documents or their JSON"
            documents = [json.loads(text) for text in encoded]
        texts = [encoder.encode(document) for document in documents]
    head = encoder.encode(
        {"v": FORMAT_VERSION, "batch_id": batch_id, "reason": reason[:MAX_REASON_CHARS]}
    )
    prefix = '{"' + MARKER + '":' + head[:-1] + ',"events":['
    suffix = "]}}"
    envelope = len(prefix.encode()) + len(suffix)
    lines: list[str] = []
    parts: list[str] = []
    size = envelope
    for text in texts:
        length = len(text) if text.isascii() else len(text.encode())
        if parts and size + length + 1 > MAX_LINE_BYTES:
            lines.append(prefix + ",".join(parts) + suffix)
            parts, size = [], envelope
        parts.append(text)
        size += length + 1
    if parts:
        lines.append(prefix + ",".join(parts) + suffix)
    return lines


def ack_lines(batch_ids: Sequence[str]) -> list[str]:
    """The lines saying the records ``batch_ids`` were answered for."""
    prefix = '{"' + ACK_MARKER + '":{"v":' + str(FORMAT_VERSION) + ',"batch_ids":['
    per_line = (MAX_LINE_BYTES - len(prefix) - 3) // 40  # a quoted UUID and a comma
    return [
        prefix
        + ",".join(f'"{batch_id}"' for batch_id in batch_ids[start : start + per_line])
        + "]}}"
        for start in range(0, len(batch_ids), per_line)
    ]


def write_unsent(
    batch_id: str,
    documents: Sequence[dict[str, Any]] | None,
    reason: str,
    stream: IO[str] | None = None,
    *,
    encoded: Sequence[str] | None = None,
) -> bool:
    """Write a batch's lines to ``stream`` (stdout); False when the stream refuses them."""
    for ascii_only in (False, True):
        lines = unsent_lines(batch_id, documents, reason, ascii_only=ascii_only, encoded=encoded)
        written = _write(lines, stream)
        if written is not None:
            return written
    return False


def write_acks(batch_ids: Sequence[str], stream: IO[str] | None = None) -> bool:
    """Write the lines saying ``batch_ids`` were answered for; False when refused."""
    return bool(_write(ack_lines(batch_ids), stream))


def _write(lines: list[str], stream: IO[str] | None) -> bool | None:
    """True when written, False when the stream is unusable, None when it cannot encode."""
    out = sys.stdout if stream is None else stream
    try:
        for line in lines:
            out.write(line + "\n")
        out.flush()
    except UnicodeEncodeError:
        return None  # a stdout that cannot encode the text: escaped, it can
    except (OSError, ValueError, AttributeError):  # closed, broken, or no stdout at all
        return False
    return True


# -- reading ----------------------------------------------------------------------------


class Record(NamedTuple):
    """One unsent-event line as read: its batch id (None if absent) and its event items."""

    batch_id: str | None
    events: list[object]


class LogContents:
    """What a log holds: records, the batch ids acknowledged, and where reading failed."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.acknowledged: set[str] = set()
        self.unreadable: list[int] = []  # numbers of lines holding a record that cannot be read

    def unanswered_events(self) -> list[object]:
        """The events of every record, in order, each once, except those of records
        answered for (an event in a record answered for was answered for, whatever other
        line holds it). Items without an event id are kept, for the caller to report."""
        seen: set[str | None] = set()
        for record in self.records:
            if record.batch_id in self.acknowledged:
                seen.update(_event_id(event) for event in record.events)
        events: list[object] = []
        for record in self.records:
            if record.batch_id in self.acknowledged:
                continue
            for event in record.events:
                event_id = _event_id(event)
                if event_id is None or event_id not in seen:
                    events.append(event)
                if event_id is not None:
                    seen.add(event_id)
        return events


def read_log(lines: Iterable[str]) -> LogContents:
    """Every record and acknowledgement among ``lines``."""
    contents = LogContents()
    for number, line in enumerate(lines, start=1):
        failures = 0
        if MARKER in line or ACK_MARKER in line:
            failures += _scan(line, contents)
        if AWSLOGS_KEY in line:
            failures += _scan_envelopes(line, contents)
        if failures:
            contents.unreadable.append(number)
    return contents


def read_unsent(lines: Iterable[str], unreadable: list[int] | None = None) -> Iterator[object]:
    """The events ``lines`` still hold for sending, in order, as found (the caller checks
    them): those of records not answered for. The numbers of lines that hold a record
    that cannot be read (cut short by a log pipeline, say) are appended to ``unreadable``.
    """
    contents = read_log(lines)
    if unreadable is not None:
        unreadable.extend(contents.unreadable)
    yield from contents.unanswered_events()


def _event_id(event: object) -> str | None:
    event_id = event.get("event_id") if isinstance(event, dict) else None
    return event_id if isinstance(event_id, str) else None


# Where a record starts: an opening brace, then the key's opening quote as this level of
# the text writes it: plain ("), escaped in a JSON string once or more (\", \\\", ...), or
# doubled in a CSV field (""; \"" for JSON in CSV).
_OPENING = re.compile(r'\{(\\*"{1,2})(doow_unsent|doow_sent)\\*"{1,2}\s*:')
# The rest of a JSON string, from inside it to its closing quote.
_JSON_STRING_REST = re.compile(r'(?:[^"\\]|\\.)*"', re.S)
# The rest of a CSV field, from inside it to its closing quote (a doubled quote is text).
_CSV_FIELD_REST = re.compile(r'(?:[^"]|"")*"(?!")', re.S)
_decoder = json.JSONDecoder()
_MAX_DEPTH = 8


def _scan(text: str, contents: LogContents, depth: int = 0) -> int:
    """Add the records in ``text`` to ``contents``; how many could not be read."""
    failures = 0
    position = 0
    while depth <= _MAX_DEPTH:
        match = _OPENING.search(text, position)
        if match is None:
            break
        start = match.start()
        quote = match.group(1)
        if quote == '"':
            try:
                document, end = _decoder.raw_decode(text, start)
            except (ValueError, RecursionError):
                failures += 1
                position = match.end()
                continue
            if not _add(document, contents):
                failures += 1
            position = end
            continue
        if '""' in quote:  # a CSV field: undouble its quotes, then read what is inside
            field = _CSV_FIELD_REST.match(text, start)
            if field is None:
                failures += 1
                position = match.end()
                continue
            failures += _scan(field.group()[:-1].replace('""', '"'), contents, depth + 1)
            position = field.end()
            continue
        # Inside a JSON string: decode the rest of it, then read what it holds (every
        # record of a message that holds several, escaped once more or not).
        rest = _JSON_STRING_REST.match(text, start)
        if rest is None:
            failures += 1
            position = match.end()
            continue
        try:
            inner = json.loads('"' + rest.group())
        except (ValueError, RecursionError):
            failures += 1
            position = match.end()
            continue
        found = _scan(inner, contents, depth + 1)
        failures += found
        position = rest.end()
    return failures


def _scan_envelopes(text: str, contents: LogContents) -> int:
    """Add the records of every subscription payload in ``text``; how many failed: an
    envelope that cannot be opened, or a record in one that cannot be read."""
    failures = 0
    for found in find_awslogs(text):
        if isinstance(found, EnvelopeError):
            failures += 1
            continue
        for message in found.messages:
            if MARKER in message or ACK_MARKER in message:
                failures += _scan(message, contents)
    return failures


def _add(document: object, contents: LogContents) -> bool:
    """Add one decoded line; False when it is not a record of either kind."""
    if not isinstance(document, dict):
        return False
    record = document.get(MARKER)
    if isinstance(record, dict):
        events = record.get("events")
        if not isinstance(events, list):
            return False
        batch_id = record.get("batch_id")
        contents.records.append(Record(batch_id if isinstance(batch_id, str) else None, events))
        return True
    ack = document.get(ACK_MARKER)
    if isinstance(ack, dict):
        batch_ids = ack.get("batch_ids")
        if not isinstance(batch_ids, list):
            return False
        contents.acknowledged.update(item for item in batch_ids if isinstance(item, str))
        return True
    return False

"""The last resort: undelivered events as log lines, which outlive the process and its disk.

One JSON object per line on stdout, which every platform keeps (CloudWatch Logs, Vercel's
runtime logs, Application Insights), so ``doow-serverless replay`` can send the events
later with the same ids. A line carries event documents and never the key::

    {"doow_unsent":{"v":1,"batch_id":"…","reason":"…","events":[{…}, …]}}

Lines are kept under 60 KB of UTF-8, whatever the batch: CloudWatch cuts a log event at
256 KB and other log pipelines at less, and a cut line loses every event in it. (One
event alone, at the most validation allows, stays under 256 KB.) Text is written as
UTF-8, not escaped, since an escaped emoji takes 12 bytes; where stdout cannot encode it,
the lines are written escaped instead.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

MARKER = "doow_unsent"
FORMAT_VERSION = 1
MAX_LINE_BYTES = 60_000
# The marker as a JSON key (escaped too, inside a wrapping JSON string), not a mere mention.
_QUOTED_MARKER = re.compile(r'\\*"' + MARKER + r'\\*"')

_utf8 = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_ascii = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def unsent_lines(
    batch_id: str, documents: Sequence[dict[str, Any]], reason: str, *, ascii_only: bool = False
) -> list[str]:
    """The log lines for one batch: as few as fit under the line limit, events in order."""
    encoder = _ascii if ascii_only else _utf8
    head = encoder.encode({"v": FORMAT_VERSION, "batch_id": batch_id, "reason": reason[:300]})
    prefix = '{"' + MARKER + '":' + head[:-1] + ',"events":['
    suffix = "]}}"
    envelope = len(prefix.encode()) + len(suffix)
    lines: list[str] = []
    parts: list[str] = []
    size = envelope
    for document in documents:
        encoded = encoder.encode(document)
        length = len(encoded) if encoded.isascii() else len(encoded.encode())
        if parts and size + length + 1 > MAX_LINE_BYTES:
            lines.append(prefix + ",".join(parts) + suffix)
            parts, size = [], envelope
        parts.append(encoded)
        size += length + 1
    if parts:
        lines.append(prefix + ",".join(parts) + suffix)
    return lines


def write_unsent(
    batch_id: str, documents: Sequence[dict[str, Any]], reason: str, stream: IO[str] | None = None
) -> bool:
    """Write a batch's lines to ``stream`` (stdout); False when the stream refuses them."""
    out = sys.stdout if stream is None else stream
    for ascii_only in (False, True):
        lines = unsent_lines(batch_id, documents, reason, ascii_only=ascii_only)
        try:
            out.write("".join(line + "\n" for line in lines))
            out.flush()
        except UnicodeEncodeError:
            continue  # a stdout that cannot encode the text: escaped, it can
        except (OSError, ValueError, AttributeError):  # closed, broken, or no stdout at all
            return False
        return True
    return False


def read_unsent(lines: Iterable[str], unreadable: list[int] | None = None) -> Iterator[object]:
    """Every event in the unsent-event lines among ``lines``, in order, as found (the
    caller checks them). The numbers of lines that name the marker but cannot be read (cut
    short by a log pipeline, say) are appended to ``unreadable``.

    A line may carry a prefix (CloudWatch puts a timestamp and request id first), or hold
    the line as a JSON string inside another JSON object, as log exports do.
    """
    for number, line in enumerate(lines, start=1):
        if MARKER not in line:
            continue
        found = False
        for record in _records(line):
            events = record.get("events")
            if isinstance(events, list):
                found = True
                yield from events
        if not found and unreadable is not None and _QUOTED_MARKER.search(line):
            unreadable.append(number)


def _records(text: str) -> Iterator[dict[str, Any]]:
    start = text.find('{"' + MARKER + '"')
    if start >= 0:
        try:
            document, _ = json.JSONDecoder().raw_decode(text, start)
        except (ValueError, RecursionError):
            pass
        else:
            if isinstance(document, dict) and isinstance(document.get(MARKER), dict):
                yield document[MARKER]
                return
    # Wrapped: the line is JSON whose string values hold the record.
    start = text.find("{")
    if start < 0:
        return
    try:
        wrapper, _ = json.JSONDecoder().raw_decode(text, start)
    except (ValueError, RecursionError):
        return
    yield from _nested_records(wrapper)


def _nested_records(value: object) -> Iterator[dict[str, Any]]:
    if isinstance(value, str):
        if MARKER in value:
            yield from _records(value)
    elif isinstance(value, dict):
        if isinstance(value.get(MARKER), dict):
            yield value[MARKER]
            return
        for item in value.values():
            yield from _nested_records(item)
    elif isinstance(value, list):
        for item in value:
            yield from _nested_records(item)

"""What one usage event is, and the rules it must follow.

The rule functions return an error message (or ``None``) rather than raising, so the
client's ``track()`` and the local collector's wire validation apply the very same rules.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from .constants import (
    KIND_USAGE,
    KINDS,
    MAX_ATTRIBUTION_KEY_LENGTH,
    MAX_ATTRIBUTION_KEYS,
    MAX_ATTRIBUTION_VALUE_LENGTH,
    MAX_NAME_LENGTH,
)
from .errors import DoowValidationError

if TYPE_CHECKING:
    import re

MAX_QUANTITY = 2**63 - 1

AttributionValue = str | int | float | bool
Attribution = dict[str, AttributionValue]


class QueuedEvent(NamedTuple):
    """A validated event waiting in the queue.

    The event id is settled when the event is put into a batch, not in ``track()``:
    ``event_id`` is a final id given by the user, ``id_seed`` a string from which a
    deterministic id is derived (idempotency key, or invocation id and sequence), and with
    neither the id is random. Once settled, the id never changes.
    """

    metric: str
    quantity: int | float
    license_id: str
    unit: str | None
    kind: str
    occurred_at: float  # seconds since the epoch, UTC
    attribution: Attribution | None
    metadata: dict[str, Any] | None
    event_id: str | None
    id_seed: str | None
    source_system: str | None


def describe(value: object) -> str:
    """A short, safe description of a value for an error message: its type, and a preview."""
    kind = type(value).__name__
    if isinstance(value, (str, int, float, bool)) or value is None:
        preview = repr(value)
        if len(preview) > 40:
            preview = preview[:37] + "..."
        return f"{kind} {preview}"
    return kind


def is_utf8(text: str) -> bool:
    """False for strings with lone surrogates, which cannot be sent as UTF-8 JSON."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


NOT_UTF8 = "must be valid Unicode text (it holds a lone surrogate)"


def name_problem(value: object) -> str | None:
    """The rule for ``metric`` and ``license_id``: a non-empty string of bounded length."""
    if type(value) is not str:
        return f"must be a non-empty string, got {describe(value)}"
    if not value or value.isspace():
        return "must be a non-empty string, got an empty one"
    if len(value) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters, got {len(value)}"
    if not is_utf8(value):
        return NOT_UTF8
    return None


def quantity_problem(value: object, kind: str) -> str | None:
    """The rule for ``quantity``: a finite int or float (not bool).

    Greater than 0 for a USAGE event; not 0 for an ADJUSTMENT (which may be negative).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be an int or float, got {describe(value)}"
    if isinstance(value, int) and not -MAX_QUANTITY <= value <= MAX_QUANTITY:
        return f"must be within ±{MAX_QUANTITY} (a 64-bit integer), got {value}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be finite, got {value!r}"
    if kind == KIND_USAGE:
        if value <= 0:
            return f"must be greater than 0 for a USAGE event, got {value!r}"
    elif value == 0:
        return "must not be 0 for an ADJUSTMENT event"
    return None


def kind_problem(value: object) -> str | None:
    if value not in KINDS:
        return f"must be one of {', '.join(KINDS)}, got {describe(value)}"
    return None


def optional_text_problem(value: object) -> str | None:
    """The rule for ``unit`` and ``source_system``: a string of bounded length when given."""
    if type(value) is not str:
        return f"must be a string, got {describe(value)}"
    if len(value) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters, got {len(value)}"
    if not is_utf8(value):
        return NOT_UTF8
    return None


def attribution_problem(value: object) -> str | None:
    """The rule for ``attribution``: a flat dict of bounded string keys to str/int/float/bool."""
    if not isinstance(value, dict):
        return f"must be a dict of strings to str/int/float/bool, got {describe(value)}"
    if len(value) > MAX_ATTRIBUTION_KEYS:
        return f"must have at most {MAX_ATTRIBUTION_KEYS} keys, got {len(value)}"
    for key, item in value.items():
        if type(key) is not str or not key:
            return f"keys must be non-empty strings, got {describe(key)}"
        if len(key) > MAX_ATTRIBUTION_KEY_LENGTH:
            return f"key {key[:40]!r}... is longer than {MAX_ATTRIBUTION_KEY_LENGTH} characters"
        if not key.isascii() and not is_utf8(key):
            return f"key {key[:40]!r} {NOT_UTF8}"
        item_type = type(item)
        if item_type is str:
            if len(item) > MAX_ATTRIBUTION_VALUE_LENGTH:
                return (
                    f"value of {key!r} must be at most {MAX_ATTRIBUTION_VALUE_LENGTH} "
                    f"characters, got {len(item)}"
                )
            if not item.isascii() and not is_utf8(item):
                return f"value of {key!r} {NOT_UTF8}"
        elif item_type is float:
            if not math.isfinite(item):
                return f"value of {key!r} must be finite, got {item!r}"
        elif item_type is not int and item_type is not bool:
            return (
                f"value of {key!r} must be a str, int, float or bool (flat, no nesting), "
                f"got {describe(item)}"
            )
    return None


def check(field: str, problem: str | None) -> None:
    """Raise the validation error for ``field`` when ``problem`` is not None."""
    if problem is not None:
        raise DoowValidationError(field, problem)


def parse_timestamp(value: object, field: str = "timestamp") -> float:
    """An aware datetime or an ISO 8601 string with an offset, as seconds since the epoch."""
    from datetime import datetime  # noqa: PLC0415 - only when a timestamp is given

    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(_rfc3339_for_fromisoformat(value.strip()))
        except ValueError:
            raise DoowValidationError(
                field, f"must be an ISO 8601 timestamp with a UTC offset, got {describe(value)}"
            ) from None
    else:
        raise DoowValidationError(
            field, f"must be an aware datetime or an ISO 8601 string, got {describe(value)}"
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise DoowValidationError(
            field, f"must carry a time zone (naive datetimes are ambiguous), got {value!r}"
        )
    return moment.timestamp()


_RFC3339: re.Pattern[str] | None = None


def _rfc3339_for_fromisoformat(text: str) -> str:
    """RFC 3339 text in the form every supported Python's ``fromisoformat`` reads.

    Python 3.10 reads neither ``Z``, nor fractions other than 3 or 6 digits, nor
    ``+0000``; 3.11 reads all three. Normalising gives the same answer on both.
    """
    global _RFC3339  # noqa: PLW0603 - compiled on first use: few events carry timestamps
    if _RFC3339 is None:
        import re  # noqa: PLC0415

        _RFC3339 = re.compile(
            r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?"
            r"(Z|z|[+-]\d{2}:?\d{2})?"
        )
    match = _RFC3339.fullmatch(text)
    if match is None:
        return text
    moment, fraction, offset = match.groups()
    if fraction:
        moment += "." + (fraction + "000000")[:6]
    if offset in ("Z", "z"):
        offset = "+00:00"
    elif offset and ":" not in offset:
        offset = f"{offset[:3]}:{offset[3:]}"
    return moment + (offset or "")


def format_timestamp(epoch_seconds: float) -> str:
    """RFC 3339 UTC with milliseconds, as the official SDKs send it.

    No datetime: the text of the second comes from a one-entry memo (the events of a batch
    share their seconds), and the milliseconds from a table.
    """
    global _last_second  # noqa: PLW0603 - a one-entry memo, one reference (threads share it)
    whole = math.floor(epoch_seconds)
    millis = round((epoch_seconds - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    second, prefix = _last_second
    if second != whole:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _last_second = (whole, prefix)
    return prefix + _MILLIS[millis]


_last_second: tuple[int, str] = (-1, "")
_MILLIS = tuple(f".{millis:03d}Z" for millis in range(1000))

"""What to do with an answer: which statuses are retried, and how long to wait.

Pure functions of their inputs (no clock, no sleeping) so the delivery loop can clip every
wait to its deadline, and tests can check the arithmetic directly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import random

BACKOFF_BASE_S = 0.1
BACKOFF_CAP_S = 5.0
# A server asking for more than this is treated as asking for this: the events are kept
# and the next flush tries again, rather than the tracker going silent for hours.
RETRY_AFTER_CAP_S = 300.0


class Disposition(Enum):
    DELIVERED = "delivered"  # 2xx other than 207
    PARTIAL = "partial"  # 207: some events refused for good, the rest accepted
    SPLIT = "split"  # 413: halve the batch and send each half
    STOP = "stop"  # 401, 403, 404: this client is refused (key, permission, URL)
    RETRY = "retry"  # 408, 429, 5xx: send the same batch again later
    PERMANENT = "permanent"  # any other 4xx: the batch is refused for good


def classify(status: int) -> Disposition:
    if status == 207:
        return Disposition.PARTIAL
    if 200 <= status < 300:
        return Disposition.DELIVERED
    # Answers about the client, not the events: resending cannot help until someone fixes
    # the key or the endpoint, and dropping the events would lose usage that is fine.
    if status in (401, 403, 404):
        return Disposition.STOP
    if status == 413:
        return Disposition.SPLIT
    if status in (408, 429) or status >= 500:
        return Disposition.RETRY
    # 1xx/3xx should never reach us (redirects are not followed): a server that answers
    # that way is misconfigured, and trying again may work after it is fixed.
    if status < 400:
        return Disposition.RETRY
    return Disposition.PERMANENT


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter before retry number ``attempt`` (1-based).

    Half the delay is fixed and half is random, so retries from many functions spread out
    while each still waits a predictable minimum.
    """
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** max(attempt - 1, 0))
    draw: float = rng.random() if rng is not None else _draw()
    return ceiling / 2 + draw * ceiling / 2


def _draw() -> float:
    import random  # noqa: PLC0415 - only needed once a retry happens

    draw: float = random.random()  # noqa: S311 - jitter, not cryptography
    return draw


def retry_after_seconds(headers: Mapping[str, str], now_epoch: float) -> float | None:
    """How long the server asked us to wait, from ``Retry-After`` and ``X-Doow-Rate-Limits``.

    ``Retry-After`` is seconds or an HTTP date; ``X-Doow-Rate-Limits`` is a JSON object of
    categories, each with a ``retry_after`` in seconds. The longest wait asked for wins;
    unreadable values are ignored.
    """
    waits = []
    header = headers.get("retry-after")
    if header is not None:
        parsed = _parse_retry_after(header, now_epoch)
        if parsed is not None:
            waits.append(parsed)
    limits = headers.get("x-doow-rate-limits")
    if limits is not None:
        waits.extend(_rate_limit_waits(limits))
    if not waits:
        return None
    return min(max(waits), RETRY_AFTER_CAP_S)


def _parse_retry_after(value: str, now_epoch: float) -> float | None:
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        from email.utils import parsedate_to_datetime  # noqa: PLC0415 - rare: an HTTP date

        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            return None
        return max(moment.timestamp() - now_epoch, 0.0)
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _rate_limit_waits(value: str) -> list[float]:
    try:
        document = json.loads(value)
    except ValueError:
        return []
    if not isinstance(document, dict):
        return []
    waits = []
    for category in document.values():
        if isinstance(category, dict):
            wait = category.get("retry_after")
            if (
                isinstance(wait, (int, float))
                and not isinstance(wait, bool)
                and math.isfinite(wait)
            ):
                waits.append(max(float(wait), 0.0))
    return waits

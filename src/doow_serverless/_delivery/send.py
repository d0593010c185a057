"""Send one batch, retrying within a deadline, and say how it ended.

Every request timeout, backoff and Retry-After wait is clipped to the deadline: when the
next step would not fit, the batch is handed back unsent (and kept) instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from .._core.config import TrackerConfig
from .._core.constants import SDK_NAME, SDK_VERSION
from .._core.deadline import Deadline
from .._core.errors import Rejection
from .._core.wire import read_error_message, read_rejections
from .outbox import Batch
from .retry import Disposition, backoff_delay, classify, retry_after_seconds
from .transport import NetworkError, Transport

if TYPE_CHECKING:
    import random

# Below this, a request cannot complete even on loopback; starting one only wastes it.
MIN_ATTEMPT_S = 0.005


class Delivered(NamedTuple):
    rejections: list[Rejection]  # from a 207; empty when all were accepted


class TooLarge(NamedTuple):
    """413: the batch must be split."""


class ClientRefused(NamedTuple):
    """401, 403 or 404: the server refuses this client (key, permission or URL)."""

    status: int
    message: str


class Refused(NamedTuple):
    """A permanent 4xx: the whole batch is refused for good."""

    status: int
    message: str


class Unsent(NamedTuple):
    """Not delivered in time; the batch is kept. ``not_before`` carries a server's wait."""

    reason: str
    attempts: int
    not_before: float | None = None  # time.monotonic() value


Outcome = Delivered | TooLarge | ClientRefused | Refused | Unsent

Sleep = Callable[[float], object]


def request_headers(config: TrackerConfig, gzipped: bool) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {config.api_key}",
        "Content-Type": "application/json",
        "X-Doow-SDK-Version": SDK_VERSION,
        "User-Agent": f"{SDK_NAME}/{SDK_VERSION}",
    }
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return headers


def send_batch(
    batch: Batch,
    *,
    config: TrackerConfig,
    transport: Transport,
    deadline: Deadline,
    sleep: Sleep = time.sleep,
    rng: random.Random | None = None,
) -> Outcome:
    body, gzipped = batch.body(config.compression)
    headers = request_headers(config, gzipped)
    attempts = 0
    while True:
        remaining = deadline.remaining()
        if remaining < MIN_ATTEMPT_S:
            return Unsent("no time left in the flush budget", attempts)
        attempts += 1
        server_wait: float | None = None
        try:
            answer = transport.post(
                config.ingest_url, body, headers, timeout=min(config.timeout, remaining)
            )
        except NetworkError as exc:
            reason = str(exc)
        else:
            disposition = classify(answer.status)
            if disposition is Disposition.DELIVERED:
                return Delivered([])
            if disposition is Disposition.PARTIAL:
                rejections = read_rejections(answer.body, batch.event_ids)
                if rejections is not None and answer.complete:
                    return Delivered(rejections)
                # Which events were refused is unknown: send the same bytes again. The
                # server deduplicates what it accepted, and says again what it refuses.
                reason = "HTTP 207 with an unreadable or cut-short list of rejections"
            if disposition is Disposition.SPLIT:
                return TooLarge()
            if disposition is Disposition.STOP:
                return ClientRefused(answer.status, read_error_message(answer.body))
            if disposition is Disposition.PERMANENT:
                return Refused(answer.status, read_error_message(answer.body))
            if disposition is Disposition.RETRY:
                reason = f"HTTP {answer.status}: {read_error_message(answer.body)}"
                server_wait = retry_after_seconds(answer.headers, time.time())

        if attempts > config.retry_count:
            return Unsent(reason, attempts, _not_before(server_wait))
        delay = max(backoff_delay(attempts, rng), server_wait or 0.0)
        if delay >= deadline.remaining():
            return Unsent(reason, attempts, _not_before(server_wait))
        sleep(delay)


def _not_before(server_wait: float | None) -> float | None:
    if server_wait is None:
        return None
    return time.monotonic() + server_wait

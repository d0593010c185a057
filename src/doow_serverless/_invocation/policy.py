"""How an invocation's flush is bounded, and how its events' ids are derived.

``budget = min(flush_timeout, remaining - reserve)``: the flush never takes more than
``flush_timeout``, and leaves ``reserve`` before the deadline for what must still happen
(writing what could not be sent, the runtime posting the response). Arguments (seconds)
beat the environment (milliseconds), which beats the defaults.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import NamedTuple

from .._core.constants import ENV_FLUSH_RESERVE, ENV_FLUSH_TIMEOUT, LOGGER_NAME
from .._core.env import EnvReader, parse_milliseconds
from .._core.errors import DoowConfigError
from .._core.scope import Idempotency
from .._core.wire import new_random_id

logger = logging.getLogger(LOGGER_NAME)

# A healthy ingest request from a function takes tens of milliseconds; 2 s leaves room for
# a retry or two, and bounds what a broken endpoint can add to every invocation.
DEFAULT_FLUSH_TIMEOUT_S = 2.0
# Kept back from the deadline for writing what could not be sent and for the runtime to
# post the response after the flush.
DEFAULT_FLUSH_RESERVE_S = 0.25


class FlushPolicy(NamedTuple):
    flush_timeout: float
    reserve: float

    def budget(self, remaining: float | None) -> float:
        """Seconds the post-invocation flush may take; 0 when no time is left."""
        if remaining is None:
            return self.flush_timeout
        return max(0.0, min(self.flush_timeout, remaining - self.reserve))


def resolve_flush_policy(
    flush_timeout: float | None,
    reserve: float | None,
    environ: Mapping[str, str] | None = None,
) -> FlushPolicy:
    """Arguments (seconds) beat the environment (milliseconds), which beats the defaults."""
    env = EnvReader(os.environ if environ is None else environ)
    policy = FlushPolicy(
        # A zero flush timeout would never send anything; a zero reserve is a choice.
        flush_timeout=_seconds(
            "flush_timeout",
            flush_timeout,
            env,
            ENV_FLUSH_TIMEOUT,
            DEFAULT_FLUSH_TIMEOUT_S,
            allow_zero=False,
        ),
        reserve=_seconds(
            "reserve", reserve, env, ENV_FLUSH_RESERVE, DEFAULT_FLUSH_RESERVE_S, allow_zero=True
        ),
    )
    for warning in env.warnings:
        logger.warning("doow-serverless: %s", warning)
    return policy


def _seconds(
    argument: str,
    value: float | None,
    env: EnvReader,
    variable: str,
    default: float,
    *,
    allow_zero: bool,
) -> float:
    if value is not None:
        bound = ">= 0" if allow_zero else "> 0"
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (value >= 0 if allow_zero else value > 0)
        ):
            raise DoowConfigError(f"{argument} must be a number of seconds {bound}, got {value!r}")
        if not math.isfinite(value):
            raise DoowConfigError(f"{argument} must be finite, got {value!r}")
        return float(value)
    parsed = env.parsed(variable, parse_milliseconds(allow_zero=allow_zero))
    return default if parsed is None else parsed


def scope_id(invocation_id: str | None, idempotency: Idempotency) -> str:
    """The prefix of derived event ids: the invocation's id, or a fresh one per attempt."""
    if idempotency == "invocation" and invocation_id:
        return invocation_id
    return "attempt:" + new_random_id()


def check_idempotency(value: str) -> Idempotency:
    if value not in ("invocation", "attempt"):
        raise DoowConfigError(f"idempotency must be 'invocation' or 'attempt', got {value!r}")
    return value  # type: ignore[return-value]

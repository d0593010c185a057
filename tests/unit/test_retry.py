"""Which answers are retried, and how long to wait: pure arithmetic."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from doow_serverless._delivery.retry import (
    RETRY_AFTER_CAP_S,
    Disposition,
    backoff_delay,
    classify,
    retry_after_seconds,
)
from doow_serverless._invocation.policy import FlushPolicy, resolve_flush_policy


@pytest.mark.parametrize(
    ("status", "disposition"),
    [
        (200, Disposition.DELIVERED),
        (202, Disposition.DELIVERED),
        (207, Disposition.PARTIAL),
        (400, Disposition.PERMANENT),
        (403, Disposition.STOP),
        (404, Disposition.STOP),
        (409, Disposition.PERMANENT),
        (422, Disposition.PERMANENT),
        (401, Disposition.STOP),
        (408, Disposition.RETRY),
        (413, Disposition.SPLIT),
        (429, Disposition.RETRY),
        (500, Disposition.RETRY),
        (502, Disposition.RETRY),
        (503, Disposition.RETRY),
        (504, Disposition.RETRY),
        (302, Disposition.RETRY),
    ],
)
def test_the_response_table(status: int, disposition: Disposition) -> None:
    assert classify(status) is disposition


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (10, 5.0), (30, 5.0)]:
        for _ in range(50):
            delay = backoff_delay(attempt, rng)
            assert ceiling / 2 <= delay <= ceiling


def test_retry_after_in_seconds_dates_and_rate_limit_headers() -> None:
    now = 1_800_000_000.0
    assert retry_after_seconds({"retry-after": "2"}, now) == 2.0
    assert retry_after_seconds({"retry-after": " 0.5 "}, now) == 0.5
    date = format_datetime(datetime.fromtimestamp(now + 30, timezone.utc), usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now) == pytest.approx(30, abs=1)
    limits = '{"events": {"limit": 10, "current": 11, "retry_after": 7}, "x": {"retry_after": 3}}'
    assert retry_after_seconds({"x-doow-rate-limits": limits}, now) == 7.0
    assert retry_after_seconds({"retry-after": "1", "x-doow-rate-limits": limits}, now) == 7.0
    assert retry_after_seconds({"retry-after": "99999"}, now) == RETRY_AFTER_CAP_S
    assert retry_after_seconds({"retry-after": "soon"}, now) is None
    assert retry_after_seconds({"x-doow-rate-limits": "[1]"}, now) is None
    assert retry_after_seconds({}, now) is None


def test_flush_budget_is_clipped_to_remaining_time_minus_reserve() -> None:
    policy = FlushPolicy(flush_timeout=2.0, reserve=0.25)
    assert policy.budget(None) == 2.0
    assert policy.budget(10.0) == 2.0
    assert policy.budget(1.0) == pytest.approx(0.75)
    assert policy.budget(0.2) == 0.0


def test_flush_policy_from_arguments_and_environment() -> None:
    assert resolve_flush_policy(None, None, {}) == FlushPolicy(2.0, 0.25)
    environ = {"DOOW_TRACK_FLUSH_TIMEOUT": "800", "DOOW_TRACK_FLUSH_RESERVE": "100"}
    assert resolve_flush_policy(None, None, environ) == FlushPolicy(0.8, 0.1)
    assert resolve_flush_policy(1.5, 0.05, environ) == FlushPolicy(1.5, 0.05)
    assert resolve_flush_policy(None, None, {"DOOW_TRACK_FLUSH_TIMEOUT": "x"}).flush_timeout == 2.0


def test_a_zero_flush_timeout_is_refused_but_a_zero_reserve_is_allowed() -> None:
    from doow_serverless import DoowConfigError

    with pytest.raises(DoowConfigError, match="flush_timeout must be a number of seconds > 0"):
        resolve_flush_policy(0, None, {})
    assert resolve_flush_policy(None, 0, {}).reserve == 0
    assert resolve_flush_policy(None, None, {"DOOW_TRACK_FLUSH_TIMEOUT": "0"}).flush_timeout == 2.0

"""track(): every rule names the field, the value's type and the rule; default mode never raises."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doow_serverless import DoowError, DoowValidationError

from .conftest import MakeTracker

VALID: dict[str, Any] = {"metric": "tokens", "quantity": 3, "license_id": "lic_1"}


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"metric": ""}, "metric", "non-empty string, got an empty one"),
        ({"metric": "   "}, "metric", "non-empty string"),
        ({"metric": None}, "metric", "got NoneType None"),
        ({"metric": 5}, "metric", "got int 5"),
        ({"metric": "m" * 300}, "metric", "at most 256 characters"),
        ({"license_id": b"lic"}, "license_id", "got bytes"),
        ({"quantity": "3"}, "quantity", "int or float, got str '3'"),
        ({"quantity": True}, "quantity", "int or float, got bool True"),
        ({"quantity": 0}, "quantity", "greater than 0 for a USAGE event"),
        ({"quantity": -2.5}, "quantity", "greater than 0"),
        ({"quantity": math.nan}, "quantity", "must be finite"),
        ({"quantity": math.inf}, "quantity", "must be finite"),
        ({"quantity": 0, "kind": "ADJUSTMENT"}, "quantity", "must not be 0 for an ADJUSTMENT"),
        ({"kind": "REFUND"}, "kind", "one of USAGE, ADJUSTMENT"),
        ({"unit": 7}, "unit", "must be a string, got int"),
        ({"attribution": ["a"]}, "attribution", "must be a dict"),
        ({"attribution": {"a": {"b": 1}}}, "attribution", "flat, no nesting"),
        ({"attribution": {"a": None}}, "attribution", "got NoneType"),
        ({"attribution": {1: "x"}}, "attribution", "keys must be non-empty strings"),
        ({"attribution": {"k": math.inf}}, "attribution", "must be finite"),
        ({"attribution": {f"k{i}": i for i in range(51)}}, "attribution", "at most 50 keys"),
        ({"attribution": {"k": "v" * 1025}}, "attribution", "at most 1024 characters"),
        ({"metadata": {"a": object()}}, "metadata", "JSON-serializable"),
        ({"metadata": {"a": math.nan}}, "metadata", "JSON-serializable"),
        ({"metadata": "text"}, "metadata", "must be a dict"),
        ({"metadata": {"blob": "x" * 20_000}}, "metadata", "at most 16384 bytes"),
        ({"timestamp": datetime(2026, 1, 1)}, "timestamp", "must carry a time zone"),
        ({"timestamp": "yesterday"}, "timestamp", "ISO 8601"),
        ({"timestamp": 1700000000}, "timestamp", "aware datetime or an ISO 8601 string"),
        ({"event_id": "not-a-uuid"}, "event_id", "must be a UUID string"),
        ({"idempotency_key": ""}, "idempotency_key", "non-empty string"),
    ],
)
def test_each_rule_names_field_type_and_rule(
    offline_tracker: MakeTracker, changes: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(DoowValidationError) as caught:
        offline_tracker(strict=True).track(**{**VALID, **changes})
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"quantity": 0.001},
        {"quantity": 10**12},
        {"quantity": -4, "kind": "ADJUSTMENT"},
        {"unit": "tokens", "attribution": {"model": "gpt-4o", "n": 2, "p": 0.5, "ok": True}},
        {"metadata": {"request_id": "r1", "nested": {"list": [1, 2]}}},
        {"timestamp": datetime.now(timezone.utc) - timedelta(hours=1)},
        {"timestamp": "2026-11-22T10:15:30.123Z"},
        {"timestamp": "2026-11-22T10:15:30+02:00"},
        {"event_id": "9B1DEB4D-3B7D-4BAD-9BDD-2B0D7B3DCB6D"},
        {"idempotency_key": "order_42_charge"},
        {"source_system": "billing-worker"},
    ],
)
def test_valid_events_are_queued(offline_tracker: MakeTracker, changes: dict[str, Any]) -> None:
    tracker = offline_tracker(strict=True)
    tracker.track(**{**VALID, **changes})
    assert tracker.stats().tracked == 1
    assert tracker.stats().pending == 1


def test_default_mode_reports_and_returns_and_loses_nothing_else(
    offline_tracker: MakeTracker,
) -> None:
    reported: list[DoowError] = []
    tracker = offline_tracker(on_error=reported.append)
    tracker.track(**VALID)
    tracker.track(**{**VALID, "quantity": -1})
    tracker.track(**VALID)
    stats = tracker.stats()
    assert (stats.tracked, stats.invalid, stats.pending) == (2, 1, 2)
    assert len(reported) == 1
    assert isinstance(reported[0], DoowValidationError)
    assert reported[0].field == "quantity"


def test_strict_mode_from_the_environment(offline_tracker: MakeTracker) -> None:
    tracker = offline_tracker(environ={"DOOW_TRACK_STRICT": "true"})
    with pytest.raises(DoowValidationError):
        tracker.track(**{**VALID, "license_id": ""})


def test_a_failing_on_error_callback_is_contained(offline_tracker: MakeTracker) -> None:
    def explode(error: DoowError) -> None:
        raise RuntimeError("callback bug")

    tracker = offline_tracker(on_error=explode)
    tracker.track(**{**VALID, "metric": ""})  # must not raise
    assert tracker.stats().invalid == 1


def test_a_disabled_tracker_does_nothing(offline_tracker: MakeTracker) -> None:
    tracker = offline_tracker(enabled=False)
    tracker.track(**VALID)
    assert tracker.stats().tracked == 0
    assert tracker.flush(0.1).pending == 0


def test_the_queue_bound_drops_and_counts(offline_tracker: MakeTracker) -> None:
    reported: list[DoowError] = []
    tracker = offline_tracker(
        max_queue_size=3, on_error=reported.append, environ={"AWS_LAMBDA_FUNCTION_NAME": "f"}
    )
    for _ in range(5):
        tracker.track(**VALID)
    stats = tracker.stats()
    assert (stats.tracked, stats.dropped, stats.pending) == (5, 2, 3)
    assert [type(error).__name__ for error in reported] == ["DoowQueueFullError"]


anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
    st.binary(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    metric=anything,
    quantity=anything,
    license_id=anything,
    unit=anything,
    attribution=anything,
    kind=st.one_of(st.sampled_from(["USAGE", "ADJUSTMENT"]), anything),
    timestamp=st.one_of(st.none(), st.text(max_size=30), st.datetimes()),
)
def test_arbitrary_values_never_raise_by_default_and_raise_only_validation_errors_in_strict(
    offline_tracker: MakeTracker,
    metric: Any,
    quantity: Any,
    license_id: Any,
    unit: Any,
    attribution: Any,
    kind: Any,
    timestamp: Any,
) -> None:
    arguments = {
        "metric": metric,
        "quantity": quantity,
        "license_id": license_id,
        "unit": unit,
        "attribution": attribution,
        "kind": kind,
        "timestamp": timestamp,
    }
    lenient = offline_tracker()
    lenient.track(**arguments)  # never raises
    stats = lenient.stats()
    assert stats.tracked + stats.invalid == 1

    strict = offline_tracker(strict=True)
    try:
        strict.track(**arguments)
    except DoowValidationError as error:
        assert str(error).startswith(f"{error.field}: ")
        assert stats.invalid == 1
    else:
        assert stats.tracked == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"license_id": "lic_\ud800"}, "license_id"),
        ({"metric": "tok\udfffens"}, "metric"),
        ({"unit": "\ud83d"}, "unit"),
        ({"attribution": {"k": "v\ud800"}}, "attribution"),
        ({"attribution": {"k\ud800": "v"}}, "attribution"),
        ({"metadata": {"note": "\ud800"}}, "metadata"),
        ({"quantity": 2**63}, "quantity"),
    ],
)
def test_values_that_cannot_be_sent_are_refused_at_the_call_site(
    offline_tracker: MakeTracker, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(DoowValidationError) as caught:
        offline_tracker(strict=True).track(**{**VALID, **changes})
    assert caught.value.field == field


def test_non_ascii_text_is_fine(offline_tracker: MakeTracker) -> None:
    tracker = offline_tracker(strict=True)
    tracker.track("jetons", 3, "licence_é", unit="トークン", attribution={"modèle": "gpt-4o 🚀"})
    assert tracker.stats().tracked == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00.12Z", 1_704_067_200.12),
        ("2024-01-01T00:00:00.123456789Z", 1_704_067_200.123456),
        ("2024-01-01T00:00:00+0000", 1_704_067_200.0),
        ("2024-01-01T02:00:00+02:00", 1_704_067_200.0),
        ("2024-01-01 00:00z", 1_704_067_200.0),
    ],
)
def test_rfc3339_timestamps_read_the_same_on_every_supported_python(
    text: str, expected: float
) -> None:
    from doow_serverless._core.events import parse_timestamp

    assert parse_timestamp(text) == pytest.approx(expected)


def test_attribution_merged_with_the_trackers_is_bounded_too(offline_tracker: MakeTracker) -> None:
    tracker = offline_tracker(strict=True, attribution={f"t{i}": i for i in range(30)})
    tracker.track(**{**VALID, "attribution": {f"t{i}": 0 for i in range(30)}})  # same keys: 30
    with pytest.raises(DoowValidationError, match="merged with the tracker's attribution"):
        tracker.track(**{**VALID, "attribution": {f"e{i}": i for i in range(30)}})
    assert tracker.stats().tracked == 1


def test_a_uuid_object_is_accepted_as_event_id(offline_tracker: MakeTracker) -> None:
    import uuid

    tracker = offline_tracker(strict=True)
    tracker.track(**{**VALID, "event_id": uuid.UUID("9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d")})
    assert tracker.stats().tracked == 1

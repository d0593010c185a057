"""with_lambda in-process: its forms, what it keeps of the handler, and its flush budget.

Handlers are called directly with the runtime client's own context class; events go to the
real collector over 127.0.0.1.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from doow_serverless import DoowConfigError, DoowTracker, with_lambda
from doow_serverless._delivery.transport import Answer
from doow_serverless._invocation import engine as _invocation
from doow_serverless._invocation.policy import FlushPolicy, resolve_flush_policy
from doow_serverless.aws_lambda import default_tracker
from doow_serverless_dev.collector import Collector

from .conftest import LAMBDA_ENVIRON, TEST_KEY, lambda_context

LICENSE = "lic_unit"


def track_one(tracker: DoowTracker, metric: str = "api_calls") -> None:
    tracker.track(metric=metric, quantity=1, license_id=LICENSE)


# -- forms -----------------------------------------------------------------------------


def test_with_a_tracker(tracker: DoowTracker, lambda_collector: Collector) -> None:
    @with_lambda(tracker)
    def handler(event: dict[str, Any], context: Any) -> str:
        track_one(tracker)
        return "ok"

    assert handler({}, lambda_context()) == "ok"
    assert lambda_collector.stats()["events_stored"] == 1


def test_with_a_tracker_and_options(tracker: DoowTracker, lambda_collector: Collector) -> None:
    @with_lambda(tracker, flush_timeout=1.5, reserve=0.1, idempotency="attempt")
    def handler(event: dict[str, Any], context: Any) -> str:
        track_one(tracker)
        return "ok"

    assert handler({}, lambda_context()) == "ok"
    assert lambda_collector.stats()["events_stored"] == 1


def test_as_a_method_bare_and_with_options(
    tracker: DoowTracker, lambda_collector: Collector
) -> None:
    @tracker.with_lambda
    def bare(event: dict[str, Any], context: Any) -> int:
        track_one(tracker)
        return 1

    @tracker.with_lambda(flush_timeout=1.0)
    def configured(event: dict[str, Any], context: Any) -> int:
        track_one(tracker)
        return 2

    assert bare({}, lambda_context()) == 1
    assert configured({}, lambda_context()) == 2
    assert lambda_collector.stats()["events_stored"] == 2


@pytest.fixture
def fresh_default_tracker(
    lambda_collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("DOOW_TRACK_API_KEY", TEST_KEY)
    monkeypatch.setenv("DOOW_TRACK_ENDPOINT", lambda_collector.url)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "unit-tests")
    monkeypatch.setattr(_invocation, "_default_tracker", None)
    yield
    built = _invocation._default_tracker
    if built is not None:
        built.shutdown(timeout=1.0)


def built_default() -> DoowTracker | None:
    return _invocation._default_tracker


@pytest.mark.usefixtures("fresh_default_tracker")
def test_bare_uses_the_default_tracker_built_at_decoration(lambda_collector: Collector) -> None:
    assert built_default() is None

    @with_lambda
    def handler(event: dict[str, Any], context: Any) -> str:
        track_one(default_tracker())
        return "ok"

    built = built_default()
    assert built is not None

    @with_lambda(flush_timeout=1.0)
    def other(event: dict[str, Any], context: Any) -> str:
        track_one(default_tracker())
        return "other"

    assert built_default() is built  # one per process
    assert handler({}, lambda_context()) == "ok"
    assert other({}, lambda_context()) == "other"
    assert lambda_collector.stats()["events_stored"] == 2


def test_importing_the_package_does_not_import_the_lambda_module() -> None:
    import subprocess
    import sys

    code = (
        "import sys, doow_serverless; "
        "print('doow_serverless.aws_lambda' in sys.modules, 'aws_lambda_powertools' in "
        "sys.modules); from doow_serverless import with_lambda; "
        "print('aws_lambda_powertools' in sys.modules, 'httpx' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False", "False", "False"]


def test_after_init_a_handlers_events_are_kept_without_loading_anything_more() -> None:
    """What keeping the first invocation's events needs is loaded while the function
    initialises: between a handler's return and the log line keeping its events, a kill
    would find them in memory only, so nothing slow (an import) may stand there."""
    import subprocess
    import sys

    code = (
        "import sys, io, doow_serverless\n"
        "tracker = doow_serverless.DoowTracker('dk_test_0000000000', "
        "endpoint='http://127.0.0.1:9', environ={'AWS_LAMBDA_FUNCTION_NAME': 'f'}, spool=False)\n"
        "tracker.prepare()\n"
        "loaded = set(sys.modules)\n"
        "tracker.track(metric='m', quantity=1, license_id='lic_x', idempotency_key='k')\n"
        "sys.stdout, out = io.StringIO(), sys.stdout\n"
        "tracker.keep()\n"
        "kept, sys.stdout = sys.stdout.getvalue(), out\n"
        "print('doow_unsent' in kept, sorted(set(sys.modules) - loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "True []"


# -- what the wrapper keeps ---------------------------------------------------------------


def test_keeps_the_handlers_metadata_and_signature(tracker: DoowTracker) -> None:
    def handler(event: Mapping[str, Any], context: Any, *, extra: int = 3) -> dict[str, int]:
        """Answers with the extra."""
        return {"extra": extra}

    wrapped = with_lambda(tracker)(handler)

    assert wrapped.__name__ == "handler"
    assert wrapped.__qualname__ == handler.__qualname__
    assert wrapped.__doc__ == "Answers with the extra."
    assert wrapped.__module__ == __name__
    assert wrapped.__wrapped__ is handler  # type: ignore[attr-defined]
    assert inspect.signature(wrapped) == inspect.signature(handler)
    assert wrapped({}, lambda_context(), extra=5) == {"extra": 5}


@pytest.mark.parametrize("value", [None, 0, "text", b"bytes", [1, 2], {"a": 1}, object()])
def test_returns_the_handlers_result_itself(tracker: DoowTracker, value: object) -> None:
    @with_lambda(tracker)
    def handler(event: object, context: Any) -> object:
        track_one(tracker)
        return value

    assert handler({}, lambda_context()) is value


def test_takes_the_context_as_a_keyword(tracker: DoowTracker, lambda_collector: Collector) -> None:
    @with_lambda(tracker)
    def handler(event: object, context: Any) -> str:
        track_one(tracker)
        return str(context.aws_request_id)

    assert handler({}, context=lambda_context(request_id="kw-request")) == "kw-request"
    twice = handler({}, context=lambda_context(request_id="kw-request"))
    assert twice == "kw-request"
    assert lambda_collector.stats()["events_stored"] == 1  # derived from the request id


def test_an_exception_propagates_as_the_same_object_after_the_flush(
    tracker: DoowTracker, lambda_collector: Collector
) -> None:
    raised = LookupError("no such order")

    @with_lambda(tracker)
    def handler(event: object, context: Any) -> None:
        track_one(tracker)
        raise raised

    with pytest.raises(LookupError) as caught:
        handler({}, lambda_context())

    assert caught.value is raised
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None
    last = traceback.extract_tb(caught.value.__traceback__)[-1]
    assert last.name == "handler"
    assert last.line == "raise raised"
    assert lambda_collector.stats()["events_stored"] == 1


class BuggyTransport:
    """A transport with a bug: it raises something no delivery code expects."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
        raise RuntimeError("bug in the transport")

    def close(self) -> None:
        pass


def test_a_failing_flush_never_replaces_the_result_or_the_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = DoowTracker(
        TEST_KEY,
        endpoint="http://127.0.0.1:9",
        transport=BuggyTransport(),
        environ=LAMBDA_ENVIRON,
    )
    raised = ValueError("the handler's own error")

    @with_lambda(tracker)
    def returns(event: object, context: Any) -> str:
        track_one(tracker)
        return "result"

    @with_lambda(tracker)
    def raises(event: object, context: Any) -> str:
        track_one(tracker)
        raise raised

    with caplog.at_level(logging.WARNING, logger="doow_serverless"):
        assert returns({}, lambda_context()) == "result"
        with pytest.raises(ValueError, match="the handler's own error") as caught:
            raises({}, lambda_context())

    assert caught.value is raised
    assert caught.value.__context__ is None
    # The tracker contains the failure itself: the batch is kept and the reason logged.
    assert "kept for the next flush: unexpected" in caplog.text
    assert tracker.stats().pending == 2  # kept for a later flush


def test_an_unreadable_remaining_time_falls_back_to_the_flush_timeout(
    tracker: DoowTracker, lambda_collector: Collector
) -> None:
    class BrokenContext:
        aws_request_id = "broken-context"

        def get_remaining_time_in_millis(self) -> int:
            raise OSError("clock unavailable")

    @with_lambda(tracker)
    def handler(event: object, context: Any) -> str:
        track_one(tracker)
        return "ok"

    assert handler({}, BrokenContext()) == "ok"
    assert lambda_collector.stats()["events_stored"] == 1


# -- decoration-time errors ----------------------------------------------------------------


def test_a_coroutine_function_is_refused_at_decoration(tracker: DoowTracker) -> None:
    async def handler(event: object, context: Any) -> None:
        return None

    class AsyncCallable:
        async def __call__(self, event: object, context: Any) -> None:
            return None

    for candidate in (handler, functools.partial(handler), AsyncCallable()):
        with pytest.raises(DoowConfigError, match="coroutine function"):
            with_lambda(tracker)(candidate)
        with pytest.raises(DoowConfigError, match=r"asyncio\.run\(\)"):
            tracker.with_lambda(candidate)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"idempotency": "request"}, "idempotency"),
        ({"flush_timeout": -1}, "flush_timeout"),
        ({"reserve": float("inf")}, "reserve"),
        ({"flush_timeout": True}, "flush_timeout"),
    ],
)
def test_bad_options_are_refused_when_given(
    tracker: DoowTracker, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(DoowConfigError, match=message):
        with_lambda(tracker, **options)


def test_something_else_than_a_tracker_or_handler_is_refused() -> None:
    with pytest.raises(DoowConfigError, match="DoowTracker or a handler"):
        with_lambda("lic_abc")  # type: ignore[call-overload]


# -- the budget ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remaining", "budget"),
    [(None, 2.0), (30.0, 2.0), (2.25, 2.0), (1.0, 0.75), (0.3, 0.05), (0.25, 0.0), (0.1, 0.0)],
)
def test_budget_is_the_flush_timeout_clipped_to_the_time_left_before_the_reserve(
    remaining: float | None, budget: float
) -> None:
    assert FlushPolicy(flush_timeout=2.0, reserve=0.25).budget(remaining) == pytest.approx(budget)


def test_policy_arguments_beat_the_environment_which_beats_the_defaults() -> None:
    environ = {"DOOW_TRACK_FLUSH_TIMEOUT": "1500", "DOOW_TRACK_FLUSH_RESERVE": "100"}
    assert resolve_flush_policy(None, None, {}) == (2.0, 0.25)
    assert resolve_flush_policy(None, None, environ) == (1.5, 0.1)
    assert resolve_flush_policy(0.5, 0.0, environ) == (0.5, 0.0)


def test_a_malformed_environment_value_falls_back_to_the_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="doow_serverless"):
        policy = resolve_flush_policy(None, None, {"DOOW_TRACK_FLUSH_TIMEOUT": "2s"})
    assert policy == (2.0, 0.25)
    assert "DOOW_TRACK_FLUSH_TIMEOUT" in caplog.text


def test_the_flush_stops_at_the_budget_under_a_hanging_collector(
    tracker: DoowTracker, lambda_collector: Collector
) -> None:
    lambda_collector.set_faults({"then": {"action": "hang"}})

    @with_lambda(tracker)
    def handler(event: object, context: Any) -> str:
        track_one(tracker)
        return "ok"

    context = lambda_context(remaining_s=1.0)
    deadline = context._epoch_deadline_time_in_ms / 1000
    started = time.monotonic()
    assert handler({}, context) == "ok"
    took = time.monotonic() - started

    # Budget: 1.0 s left minus the 0.25 s reserve, about 0.75 s. Tolerance: it must have
    # waited for most of it (>= 0.6 s), and returned before the deadline itself.
    assert took >= 0.6
    assert time.time() < deadline
    assert tracker.stats().pending == 1


def test_the_flush_timeout_bounds_the_flush_when_time_is_plentiful(
    tracker: DoowTracker, lambda_collector: Collector
) -> None:
    lambda_collector.set_faults({"then": {"action": "hang"}})

    @with_lambda(tracker, flush_timeout=0.3)
    def handler(event: object, context: Any) -> str:
        track_one(tracker)
        return "ok"

    started = time.monotonic()
    assert handler({}, lambda_context(remaining_s=60.0)) == "ok"
    took = time.monotonic() - started

    # Tolerance: 0.3 s budget, +0.5 s for a loaded machine; far below the 60 s left.
    assert 0.25 <= took < 0.8


def test_no_budget_left_sends_nothing_and_keeps_the_events(
    tracker: DoowTracker, lambda_collector: Collector
) -> None:
    @with_lambda(tracker)
    def handler(event: object, context: Any) -> str:
        track_one(tracker)
        return "ok"

    assert handler({}, lambda_context(remaining_s=0.2)) == "ok"

    assert lambda_collector.stats()["requests"] == 0
    assert tracker.stats().pending == 1

    assert handler({}, lambda_context(remaining_s=5.0)) == "ok"

    stats = lambda_collector.stats()
    assert stats["events_stored"] == 2
    assert stats["requests"] == 1
    assert tracker.stats().pending == 0


def test_a_handler_still_running_near_its_deadline_has_its_events_spooled(
    lambda_collector: Collector, tmp_path: Any
) -> None:
    tracker = DoowTracker(
        TEST_KEY,
        endpoint=lambda_collector.url,
        environ={**LAMBDA_ENVIRON, "DOOW_TRACK_SPOOL_DIR": str(tmp_path)},
    )
    spooled_while_running: list[int] = []

    @with_lambda(tracker, reserve=0.1)
    def handler(event: object, context: Any) -> str:
        track_one(tracker)
        # The deadline is 0.5 s away; the watch persists the queue 0.1 s before it.
        time.sleep(0.45)
        spooled_while_running.append(len(list(tmp_path.glob("*/*.json"))))
        return "ok"

    handler({}, lambda_context(remaining_s=0.5))

    assert spooled_while_running == [1]
    assert lambda_collector.stats()["requests"] == 0  # nothing is sent while it runs
    tracker.shutdown()


def test_a_handler_that_returns_early_is_not_spooled_by_the_watch(
    lambda_collector: Collector, tmp_path: Any
) -> None:
    lambda_collector.set_faults({"then": {"action": "hang"}})
    tracker = DoowTracker(
        TEST_KEY,
        endpoint=lambda_collector.url,
        environ={**LAMBDA_ENVIRON, "DOOW_TRACK_SPOOL_DIR": "off", "DOOW_TRACK_LOG_UNSENT": "0"},
    )
    persisted: list[str] = []
    tracker.persist = persisted.append  # type: ignore[method-assign,assignment]

    @with_lambda(tracker, flush_timeout=0.05)
    def handler(event: object, context: Any) -> str:
        track_one(tracker)
        return "ok"

    handler({}, lambda_context(remaining_s=0.3))
    time.sleep(0.4)  # past the moment the watch would have fired

    assert persisted == []


# -- event ids --------------------------------------------------------------------------


def test_event_ids_follow_the_request_id_and_the_sequence(
    tracker: DoowTracker, lambda_collector: Collector
) -> None:
    @with_lambda(tracker)
    def handler(event: object, context: Any) -> None:
        track_one(tracker, "first")
        track_one(tracker, "second")

    handler({}, lambda_context(request_id="request-a"))
    ids_a = {e["measurements"][0]["metric_name"]: e["event_id"] for e in lambda_collector.events()}
    handler({}, lambda_context(request_id="request-a"))
    handler({}, lambda_context(request_id="request-b"))

    events = lambda_collector.events()
    assert len(events) == 4
    assert ids_a["first"] != ids_a["second"]
    assert lambda_collector.stats()["duplicates"] == 2


def test_attempt_mode_gives_each_attempt_fresh_ids(
    tracker: DoowTracker, lambda_collector: Collector
) -> None:
    @with_lambda(tracker, idempotency="attempt")
    def handler(event: object, context: Any) -> None:
        track_one(tracker)

    handler({}, lambda_context(request_id="request-c"))
    handler({}, lambda_context(request_id="request-c"))

    assert lambda_collector.stats()["events_stored"] == 2


def test_an_explicit_event_id_or_idempotency_key_wins(
    tracker: DoowTracker, lambda_collector: Collector
) -> None:
    explicit = "0b4c7a5e-6f1d-4c1a-9a55-3c2f5d6e7f80"

    @with_lambda(tracker, idempotency="attempt")
    def handler(event: object, context: Any) -> None:
        tracker.track(metric="a", quantity=1, license_id=LICENSE, event_id=explicit)
        tracker.track(metric="b", quantity=1, license_id=LICENSE, idempotency_key="order-9")

    handler({}, lambda_context(request_id="request-d"))
    handler({}, lambda_context(request_id="request-e"))

    events = lambda_collector.events()
    assert len(events) == 2
    assert explicit in {event["event_id"] for event in events}

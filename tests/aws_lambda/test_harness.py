"""lambda_local itself: the harness must see what Lambda would see, or the runtime tests
could not fail."""

from __future__ import annotations

import pytest

from .conftest import FUNCTIONS_DIR, MakeFunction

pytestmark = pytest.mark.timeout(60)


def test_a_handler_past_its_deadline_is_killed_and_the_next_invocation_is_cold(
    make_function: MakeFunction,
) -> None:
    function = make_function("handlers.slow", code_dir=FUNCTIONS_DIR, timeout=0.5)
    first = function.invoke({"leave_ms": 100})
    stuck = function.invoke({"leave_ms": -1})  # works until killed
    after = function.invoke({"leave_ms": 100})

    assert first.ok
    assert stuck.status == "timeout"
    assert stuck.payload["errorMessage"] == "Task timed out after 0.50 seconds"
    assert function.kills == 1
    assert after.ok
    assert after.cold_start
    assert after.payload["pid"] != first.payload["pid"]
    assert function.cold_starts == 2


def test_a_handler_that_cannot_be_imported_is_an_init_error(make_function: MakeFunction) -> None:
    function = make_function("no_such_module.handler", code_dir=FUNCTIONS_DIR)
    result = function.invoke({})

    assert result.status == "init_error"
    assert result.error_type == "Runtime.ImportModuleError"
    assert "no_such_module" in result.payload["errorMessage"]


def test_the_context_follows_the_deadline_and_the_configuration(
    make_function: MakeFunction,
) -> None:
    function = make_function("handlers.slow", code_dir=FUNCTIONS_DIR, timeout=2.0)
    result = function.invoke({"leave_ms": 1500}, request_id="ctx-request")

    assert result.ok
    assert result.request_id == "ctx-request"
    # Tolerance: the handler stops polling as soon as 1500 ms or less are left.
    assert 1300 <= result.payload["remaining_ms"] <= 1500
    assert result.margin is not None
    assert 1.2 < result.margin <= 1.5

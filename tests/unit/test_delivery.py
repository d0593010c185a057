"""Choosing a delivery: the argument, the shared variable, and what each platform offers."""

from __future__ import annotations

import logging

import pytest

from doow_serverless import DoowConfigError
from doow_serverless._invocation.delivery import resolve_delivery, resolve_platform_delivery


def test_the_argument_beats_the_variable_which_beats_auto() -> None:
    environ = {"DOOW_TRACK_DELIVERY": "logs"}
    assert resolve_delivery("sync", environ) == "sync"
    assert resolve_delivery(None, environ) == "logs"
    assert resolve_delivery(None, {"DOOW_TRACK_DELIVERY": "After-Response"}) == "after-response"
    assert resolve_delivery(None, {}) == "auto"


def test_an_unknown_argument_is_an_error_and_an_unknown_variable_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(DoowConfigError, match="delivery must be one of auto, sync"):
        resolve_delivery("eventually")
    with caplog.at_level(logging.WARNING):
        assert resolve_delivery(None, {"DOOW_TRACK_DELIVERY": "eventually"}) == "auto"
    assert "DOOW_TRACK_DELIVERY must be one of" in caplog.text


@pytest.mark.parametrize(
    ("platform", "offered", "refused"),
    [("Vercel", ("logs",), "background"), ("Azure Functions", ("sync", "logs"), "after-response")],
)
def test_a_platform_refuses_an_argument_it_does_not_offer_and_ignores_such_a_variable(
    platform: str,
    offered: tuple[str, ...],
    refused: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for choice in offered:
        assert resolve_platform_delivery(choice, platform, offered, {}) == choice  # type: ignore[arg-type]
    with pytest.raises(DoowConfigError, match=f"on {platform}, delivery must be one of auto"):
        resolve_platform_delivery(refused, platform, offered, {})  # type: ignore[arg-type]
    # The variable is shared by every function of a deployment: set for Lambda, it must
    # not break the Vercel or Azure ones.
    with caplog.at_level(logging.WARNING):
        environ = {"DOOW_TRACK_DELIVERY": refused}
        chosen = resolve_platform_delivery(None, platform, offered, environ)  # type: ignore[arg-type]
    assert chosen == "auto"
    assert f"has no meaning on {platform}" in caplog.text


def test_the_wrappers_check_delivery_when_they_decorate() -> None:
    from doow_serverless import DoowTracker, with_azure_function, with_vercel

    tracker = DoowTracker("dk_delivery_tests_0000")
    with pytest.raises(DoowConfigError, match="on Vercel"):
        with_vercel(tracker, delivery="background")
    with pytest.raises(DoowConfigError, match="on Azure Functions"):
        with_azure_function(tracker, delivery="after-response")

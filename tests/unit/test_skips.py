"""Under make test, only the skips tests/skips.py allows pass; every skip is listed."""

from __future__ import annotations

import sys

import pytest

from tests import skips

CHROMIUM = skips.Skipped("tests/collector/test_browser.py::test_x", "Chromium is not installed")
RUNTIME = skips.Skipped(
    "tests/delivery/test_y.py::test_z",
    "could not import 'awslambdaric': No module named 'awslambdaric'",
)


def test_strict_mode_refuses_every_skip_not_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(skips.STRICT_ENV, "1")
    expected = [CHROMIUM] if sys.version_info < (3, 11) else [CHROMIUM, RUNTIME]
    assert skips.refused([CHROMIUM, RUNTIME]) == expected


def test_outside_strict_mode_skips_are_listed_not_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(skips.STRICT_ENV, raising=False)
    assert skips.refused([CHROMIUM]) == []
    assert skips.summary([CHROMIUM]) == [
        "SKIPPED tests/collector/test_browser.py::test_x: Chromium is not installed "
        "[NOT ALLOWED under make test]"
    ]

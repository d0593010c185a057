"""The one reader of the environment: every ``DOOW_TRACK_*`` value is parsed here.

A malformed value never raises: it becomes a warning naming the variable and reads as
absent, so the default applies. Explicit arguments are checked by the ``*_check``
functions, which say what is wrong instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TypeVar

T = TypeVar("T")

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})


class EnvReader:
    """Reads DOOW_TRACK_* values; a malformed one becomes a warning and reads as absent."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.warnings: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def warn(self, name: str, problem: str) -> None:
        self.warnings.append(f"{name} {problem}; using the default instead")

    def boolean(self, name: str, default: bool) -> bool:
        value = self._environ.get(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
        self.warn(name, f"must be true or false, got {value[:40]!r}")
        return default

    def parsed(self, name: str, parse: Callable[[str], T]) -> T | None:
        value = self.raw(name)
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            self.warn(name, str(exc))
            return None


def count_check(minimum: int) -> Callable[[int], str | None]:
    def check(value: int) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return f"must be a whole number >= {minimum}, got {value!r}"
        return None

    return check


def parse_count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"must be a whole number >= {minimum}, got {text[:40]!r}") from None
        if value < minimum:
            raise ValueError(f"must be a whole number >= {minimum}, got {value}")
        return value

    return parse


def parse_milliseconds(*, allow_zero: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            millis = float(text)
        except ValueError:
            raise ValueError(f"must be a number of milliseconds, got {text[:40]!r}") from None
        if not math.isfinite(millis) or millis < 0 or (millis == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ValueError(f"must be a number of milliseconds {bound}, got {text[:40]!r}")
        return millis / 1000.0

    return parse


def seconds_check(*, allow_zero: bool) -> Callable[[float], str | None]:
    def check(value: float) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number of seconds, got {type(value).__name__}"
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            return f"must be a number of seconds {'>= 0' if allow_zero else '> 0'}, got {value!r}"
        return None

    return check


def parse_seconds(*, allow_zero: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            seconds = float(text)
        except ValueError:
            raise ValueError(f"must be a number of seconds, got {text[:40]!r}") from None
        if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ValueError(f"must be a number of seconds {bound}, got {text[:40]!r}")
        return seconds

    return parse

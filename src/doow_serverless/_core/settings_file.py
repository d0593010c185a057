"""The official CLI's JSON config file, read the way both official CLIs write it.

The Doow guide shows camelCase keys (``apiKey``, ``flushAt``, ``flushInterval``), while the
Node CLI's loader reads snake_case (``api_key``, ``flush_at``, ...); either spelling of a
key is accepted here, normalised to snake_case. An unknown key, or one key given in both
spellings with different values, is an error naming it. Durations are milliseconds, as
in the official CLIs. Parsing only: the caller reads the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

# The keys every command reads (send, replay, daemon): where to send, and how.
CONNECTION_KEYS = frozenset(
    {
        "api_key",
        "endpoint",
        "flush_at",
        "flush_interval",
        "timeout",
        "attribution",
        "debug",
        "disabled",
    }
)


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def parse_settings_file(text: str, source: str, extra_keys: Iterable[str] = ()) -> dict[str, Any]:
    """The settings a config file holds, keyed in snake_case; ValueError names a problem.

    ``extra_keys`` (snake_case) are accepted besides :data:`CONNECTION_KEYS`.
    """
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"config file {source} is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ValueError(f"config file {source} must hold a JSON object")
    known = {*CONNECTION_KEYS, *extra_keys}
    spellings = {camel_case(name): name for name in known} | {name: name for name in known}
    unknown = sorted(key for key in document if key not in spellings)
    if unknown:
        raise ValueError(f"config file {source} has unknown key(s) {', '.join(map(repr, unknown))}")
    settings: dict[str, Any] = {}
    for key, value in document.items():
        name = spellings[key]
        if name in settings and settings[name] != value:
            raise ValueError(
                f"config file {source} gives {name!r} twice ({camel_case(name)!r} and "
                f"{name!r}) with different values"
            )
        settings[name] = value
    return settings


def tracker_settings(flags: Mapping[str, Any], file: Mapping[str, Any]) -> dict[str, Any]:
    """The tracker's keyword arguments: a flag (not None) beats the file; what neither
    gives is left to the ``DOOW_TRACK_*`` variables and the defaults."""
    settings: dict[str, Any] = {}
    for name in ("api_key", "endpoint"):
        value = flags.get(name) or file.get(name)
        if value:
            settings[name] = value
    if "flush_at" in file:
        settings["flush_at"] = file["flush_at"]
    for name in ("flush_interval", "timeout"):
        if name in file:
            settings[name] = milliseconds(file[name], name)
    if "attribution" in file:
        settings["attribution"] = file["attribution"]
    if flags.get("debug") or _true(file, "debug"):
        settings["debug"] = True
    if _true(file, "disabled"):
        settings["enabled"] = False
    return settings


def milliseconds(value: object, name: str) -> float:
    """A duration in milliseconds from the file, in seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(
            f"config {camel_case(name)} must be a number of milliseconds, got {value!r}"
        )
    return float(value) / 1000.0


def _true(file: Mapping[str, Any], name: str) -> bool:
    value = file.get(name, False)
    if not isinstance(value, bool):
        raise ValueError(f"config {camel_case(name)} must be true or false, got {value!r}")
    return value

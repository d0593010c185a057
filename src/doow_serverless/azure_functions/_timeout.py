"""The function timeout of an Azure Functions app, which Azure does not tell a function.

The app setting ``AzureFunctionsJobHost__functionTimeout``, else ``functionTimeout`` in the
app's ``host.json`` (read once per process), else the plan's default: 5 minutes on
Consumption (at most 10), 30 on the others.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import Any, NamedTuple

from .._core.constants import LOGGER_NAME

logger = logging.getLogger(LOGGER_NAME)

# App setting that overrides host.json's functionTimeout (``__`` stands for ``:``).
ENV_FUNCTION_TIMEOUT = "AzureFunctionsJobHost__functionTimeout"
# The function app's root (where host.json is), as the platform's images set it.
ENV_SCRIPT_ROOT = "AzureWebJobsScriptRoot"
# The hosting plan: "Dynamic" is Consumption; "FlexConsumption", "ElasticPremium" (Premium)
# and the App Service SKUs (Dedicated) default to 30 minutes.
ENV_SKU = "WEBSITE_SKU"
CONSUMPTION_SKU = "Dynamic"
CONSUMPTION_DEFAULT_TIMEOUT_S = 300.0
CONSUMPTION_MAX_TIMEOUT_S = 600.0
OTHER_PLANS_DEFAULT_TIMEOUT_S = 1800.0


class FunctionTimeout(NamedTuple):
    """The function timeout in seconds (None: unbounded), and where it was found."""

    seconds: float | None
    source: str


def resolve_function_timeout(
    environ: Mapping[str, str] | None = None, *, source_file: str | None = None
) -> FunctionTimeout:
    """The app setting, else host.json's ``functionTimeout``, else the plan's default.

    host.json is looked for in ``AzureWebJobsScriptRoot``, then next to ``source_file``
    and up to two folders above it (a v1 function lives one folder below the app's root),
    then in the working directory; each host.json is read once per process.
    """
    environ = os.environ if environ is None else environ
    sku = environ.get(ENV_SKU, "").strip()
    # Only a Consumption app is capped at 10 minutes; an unknown plan (a local host) gets
    # the smallest default, so the budget errs on the short side.
    capped = sku == CONSUMPTION_SKU
    text = environ.get(ENV_FUNCTION_TIMEOUT, "").strip()
    if text:
        parsed = _parse_timespan(text)
        if parsed is not _INVALID:
            return FunctionTimeout(_plan_capped(parsed, capped), ENV_FUNCTION_TIMEOUT)
        _warn_invalid(ENV_FUNCTION_TIMEOUT, text)
    path = _find_host_json(environ, source_file)
    if path is not None:
        configured = _host_json_timeout(path)
        if configured is not _INVALID:
            return FunctionTimeout(_plan_capped(configured, capped), path)
    if not sku or capped:
        return FunctionTimeout(CONSUMPTION_DEFAULT_TIMEOUT_S, "plan default (Consumption)")
    return FunctionTimeout(OTHER_PLANS_DEFAULT_TIMEOUT_S, f"plan default ({sku})")


# A sentinel distinct from None, which means "unbounded" (functionTimeout "-1").
_INVALID: Any = object()
_TIMESPAN = re.compile(
    r"(?:(?P<days>\d+)\.)?(?P<hours>\d+):(?P<minutes>\d+)(?::(?P<seconds>\d+(?:\.\d+)?))?"
)


def _parse_timespan(text: str) -> Any:
    """A .NET TimeSpan as host.json writes it ("00:05:00", "1.00:00:00"); "-1": unbounded."""
    text = text.strip()
    if text.startswith("-"):
        return None if _TIMESPAN.fullmatch(text[1:]) or text == "-1" else _INVALID
    match = _TIMESPAN.fullmatch(text)
    if match is None:
        return _INVALID
    hours, minutes = int(match["hours"]), int(match["minutes"])
    if hours > 23 or minutes > 59:
        return _INVALID
    seconds = float(match["seconds"] or 0)
    if seconds >= 60:
        return _INVALID
    total = int(match["days"] or 0) * 86400 + hours * 3600 + minutes * 60 + seconds
    return total if total > 0 else _INVALID


def _plan_capped(seconds: float | None, capped: bool) -> float | None:
    # The Consumption plan never runs a function longer than 10 minutes.
    if capped:
        return (
            CONSUMPTION_MAX_TIMEOUT_S
            if seconds is None
            else min(seconds, CONSUMPTION_MAX_TIMEOUT_S)
        )
    return seconds


def _warn_invalid(where: str, text: str) -> None:
    logger.warning(
        "doow-serverless: functionTimeout in %s is not a time span like '00:05:00', got %r; "
        "using the plan's default",
        where,
        text[:40],
    )


def _find_host_json(environ: Mapping[str, str], source_file: str | None) -> str | None:
    folders: list[str] = []
    root = environ.get(ENV_SCRIPT_ROOT, "").strip()
    if root:
        folders.append(root)
    if source_file:
        folder = os.path.dirname(os.path.abspath(source_file))
        for _ in range(3):
            folders.append(folder)
            folder = os.path.dirname(folder)
    folders.append(os.getcwd())
    for folder in folders:
        candidate = os.path.join(folder, "host.json")
        if os.path.isfile(candidate):
            return candidate
    return None


_host_json_timeouts: dict[str, Any] = {}
_host_json_lock = threading.Lock()


def _host_json_timeout(path: str) -> Any:
    """``functionTimeout`` of one host.json: seconds, None (unbounded), or ``_INVALID``."""
    with _host_json_lock:
        if path not in _host_json_timeouts:
            _host_json_timeouts[path] = _read_host_json(path)
        return _host_json_timeouts[path]


def _read_host_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8-sig") as file:
            document = json.load(file)
    except (OSError, ValueError) as error:
        logger.warning(
            "doow-serverless: could not read %s (%s); using the plan's default", path, error
        )
        return _INVALID
    value = document.get("functionTimeout") if isinstance(document, dict) else None
    if value is None:
        return _INVALID  # not configured: the plan's default applies
    parsed = _parse_timespan(str(value))
    if parsed is _INVALID:
        _warn_invalid(path, str(value))
    return parsed


def _reset_host_json_cache() -> None:
    """Forget what host.json files said (for tests)."""
    with _host_json_lock:
        _host_json_timeouts.clear()

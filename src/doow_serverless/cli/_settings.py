"""Where the commands send, and with which key: flags beat the config file, which beats the
``DOOW_TRACK_*`` variables. The config file is the official CLI's (``apiKey``,
``endpoint``, ``flushAt``, ``flushInterval`` in ms, ``attribution``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .._core import constants as C

_CONFIG_KEYS = {"apiKey", "endpoint", "flushAt", "flushInterval", "attribution", "timeout"}


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """Where to send, and with which key: flags beat the config file, which beats the env."""
    parser.add_argument(
        "--api-key", help=f"the dk_ key (default: config file, then ${C.ENV_API_KEY})"
    )
    parser.add_argument("--endpoint", help=f"ingest endpoint (default: config, ${C.ENV_ENDPOINT})")
    parser.add_argument("--config", type=Path, help="a JSON config file (apiKey, endpoint, ...)")


def tracker_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Flags beat the config file, which beats the DOOW_TRACK_* variables."""
    config = _read_config(args.config) if args.config else {}
    settings: dict[str, Any] = {}
    api_key = args.api_key or config.get("apiKey")
    if api_key:
        settings["api_key"] = api_key
    endpoint = args.endpoint or config.get("endpoint")
    if endpoint:
        settings["endpoint"] = endpoint
    if "flushAt" in config:
        settings["flush_at"] = config["flushAt"]
    if "flushInterval" in config:
        settings["flush_interval"] = _milliseconds(config["flushInterval"], "flushInterval")
    if "timeout" in config:
        settings["timeout"] = _milliseconds(config["timeout"], "timeout")
    if "attribution" in config:
        settings["attribution"] = config["attribution"]
    if args.debug:
        settings["debug"] = True
    return settings


def _read_config(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"config file {path} is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ValueError(f"config file {path} must hold a JSON object")
    unknown = sorted(set(document) - _CONFIG_KEYS)
    if unknown:
        raise ValueError(f"config file {path} has unknown key(s) {', '.join(map(repr, unknown))}")
    return document


def _milliseconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"config {name} must be a number of milliseconds, got {value!r}")
    return float(value) / 1000.0

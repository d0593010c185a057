"""Where the commands send, and with which key: flags beat the config file, which beats the
``DOOW_TRACK_*`` variables. The config file is the official CLI's (``apiKey``,
``endpoint``, ``flushAt``, ``flushInterval`` in ms, ``attribution``; the snake_case
spellings the Node CLI reads are accepted too)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._core import constants as C
from .._core.settings_file import parse_settings_file
from .._core.settings_file import tracker_settings as merge_settings


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """Where to send, and with which key: flags beat the config file, which beats the env."""
    parser.add_argument(
        "--api-key", help=f"the dk_ key (default: config file, then ${C.ENV_API_KEY})"
    )
    parser.add_argument("--endpoint", help=f"ingest endpoint (default: config, ${C.ENV_ENDPOINT})")
    parser.add_argument("--config", type=Path, help="a JSON config file (apiKey, endpoint, ...)")


def tracker_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Flags beat the config file, which beats the DOOW_TRACK_* variables."""
    file = read_settings_file(args.config) if args.config else {}
    flags = {"api_key": args.api_key, "endpoint": args.endpoint, "debug": args.debug}
    return merge_settings(flags, file)


def read_settings_file(path: Path, extra_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    return parse_settings_file(path.read_text(encoding="utf-8"), str(path), extra_keys)

"""Small HTTP helpers shared by the collector's modules: error bodies and JSON encoding."""

from __future__ import annotations

import json
import logging
from typing import Any

from doow_serverless._core.config import is_loopback
from doow_serverless._core.wire import error_body, error_class

__all__ = ["encode_json", "error_body", "error_class", "is_loopback", "logger"]

logger = logging.getLogger("doow_serverless_dev.collector")

_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def encode_json(document: Any) -> bytes:
    return _encoder.encode(document).encode()

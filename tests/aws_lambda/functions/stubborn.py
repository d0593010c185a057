"""A handler whose process ignores SIGTERM: only the SIGKILL after the grace ends it."""

from __future__ import annotations

import os
import signal
from typing import Any

signal.signal(signal.SIGTERM, signal.SIG_IGN)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"pid": os.getpid()}

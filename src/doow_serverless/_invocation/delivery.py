"""How a platform wrapper delivers an invocation's events: the choices, and the one that
needs no platform of its own (by log lines alone).

- ``sync``: flushed before the response goes back (within the invocation's deadline);
- ``after-response``: kept (log line, spool) before the response, sent after it, while the
  platform still lets the process run (a Lambda internal extension; Vercel's
  ``wait_until``);
- ``background``: kept before the response, sent by a thread of the process (Lambda
  Managed Instances, which never freeze the environment);
- ``logs``: written as log lines only, sent by a forwarder reading the platform's logs:
  no network request in the function at all;
- ``auto``: the platform's best (``background`` on Managed Instances, ``after-response``
  on Vercel, ``sync`` elsewhere).

An argument beats ``DOOW_TRACK_DELIVERY``, which beats ``auto``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Literal, cast

from .._core.constants import ENV_DELIVERY, LOGGER_NAME
from .._core.env import EnvReader
from .._core.errors import DoowConfigError
from .engine import Invocation

logger = logging.getLogger(LOGGER_NAME)

Delivery = Literal["auto", "sync", "after-response", "background", "logs"]
DELIVERIES: tuple[Delivery, ...] = ("auto", "sync", "after-response", "background", "logs")


def resolve_delivery(value: str | None, environ: Mapping[str, str] | None = None) -> Delivery:
    if value is not None:
        if value not in DELIVERIES:
            raise DoowConfigError(f"delivery must be one of {', '.join(DELIVERIES)}, got {value!r}")
        return value
    env = EnvReader(os.environ if environ is None else environ)
    text = env.raw(ENV_DELIVERY)
    if text is None:
        return "auto"
    if text.lower() not in DELIVERIES:
        logger.warning(
            "doow-serverless: %s must be one of %s, got %r; using auto",
            ENV_DELIVERY,
            ", ".join(DELIVERIES),
            text[:40],
        )
        return "auto"
    return cast(Delivery, text.lower())


def end_by_log(invocation: Invocation) -> None:
    """Logs-only: the invocation's events go out as log lines, and nothing is sent."""
    invocation.end_by_log()

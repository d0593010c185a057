"""Handlers the delivery-mode tests run under the real runtime client.

The mode comes from ``DOOW_TRACK_DELIVERY``, as an operator would set it without a deploy.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from aws_lambda_powertools import Logger

from doow_serverless import DoowTracker, with_lambda

tracker = DoowTracker()
logger = Logger(service="delivery-modes")
LICENSE = "lic_delivery_modes"


class PaymentDeclined(Exception):
    pass


def _track(event: dict[str, Any]) -> None:
    for _ in range(int(event.get("count", 1))):
        tracker.track(metric="api_calls", quantity=1, license_id=LICENSE)


@with_lambda(tracker)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _track(event)
    if event.get("announce"):  # say the events are tracked, before working
        print(json.dumps({"tracked": int(event.get("count", 1)), "pid": os.getpid()}), flush=True)
    if event.get("raise"):
        raise PaymentDeclined("card declined")
    time.sleep(event.get("sleep_ms", 0) / 1000)
    return {
        "tracked": int(event.get("count", 1)),
        "pid": os.getpid(),
        "remaining_ms": context.get_remaining_time_in_millis(),
    }


@with_lambda(tracker)
@logger.inject_lambda_context
def powertools_inside(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _track(event)
    logger.info("handled")
    return {"tracked": int(event.get("count", 1))}


@logger.inject_lambda_context
@with_lambda(tracker)
def powertools_outside(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _track(event)
    logger.info("handled")
    return {"tracked": int(event.get("count", 1))}

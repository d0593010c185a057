"""An API behind API Gateway, metered with doow-serverless.

Powertools' Logger adds the request id to every log line and its resolver routes the
request; ``with_lambda`` flushes the usage events before the invocation ends, within its
remaining time. Deploy with ``sam build && sam deploy``; try it locally with
``sam local invoke`` or ``doow-serverless invoke`` (see docs/lambda.md).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from doow_serverless import DoowTracker, with_lambda

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Module level: built once per execution environment and reused while it stays warm,
# so the connection to Doow made by one invocation serves the next ones.
tracker = DoowTracker()  # DOOW_TRACK_API_KEY and DOOW_TRACK_ENDPOINT come from the environment
logger = Logger()
app = APIGatewayRestResolver()

LICENSE_ID = os.environ.get("DOOW_LICENSE_ID", "lic_example")


@app.get("/hello")
def hello() -> dict[str, Any]:
    tracker.track(metric="api_calls", quantity=1, license_id=LICENSE_ID)
    return {"message": "hello"}


@app.post("/orders")
def create_order() -> dict[str, Any]:
    body = app.current_event.json_body or {}
    items = int(body.get("items", 1))
    tracker.track(metric="api_calls", quantity=1, license_id=LICENSE_ID)
    tracker.track(
        metric="order_items",
        quantity=items,
        license_id=LICENSE_ID,
        attribution={"route": "/orders"},
    )
    logger.info("order created", extra={"items": items})
    return {"items": items}


@with_lambda(tracker)
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

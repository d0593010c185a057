"""v1 model, async, no context parameter: the wrapper asks the worker for it."""

from __future__ import annotations

import asyncio

import azure.functions as func

from doow_serverless import default_tracker, with_azure_function


@with_azure_function
async def main(req: func.HttpRequest) -> func.HttpResponse:
    default_tracker().track(metric="v1_calls", quantity=1, license_id="lic_azure_tests")
    await asyncio.sleep(float(req.params.get("sleep_ms", "0")) / 1000)
    return func.HttpResponse("async v1")

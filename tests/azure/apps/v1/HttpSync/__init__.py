"""v1 model, sync, declares context: the bare decorator and the shared default tracker."""

from __future__ import annotations

import azure.functions as func

from doow_serverless import default_tracker, with_azure_function


@with_azure_function
def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    default_tracker().track(metric="v1_calls", quantity=1, license_id="lic_azure_tests")
    return func.HttpResponse(context.invocation_id)

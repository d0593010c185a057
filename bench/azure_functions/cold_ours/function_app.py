"""One HTTP function, metered: the tracker, its client prepared at indexing, one event."""

from __future__ import annotations

import azure.functions as func

from doow_serverless import DoowTracker, with_azure_function

tracker = DoowTracker()
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="hello")
@with_azure_function(tracker)
def hello(req: func.HttpRequest) -> func.HttpResponse:
    tracker.track(metric="api_calls", quantity=1, license_id="lic_bench")
    return func.HttpResponse("ok")

"""with_azure_function above @app.route: the app must refuse to load, not run unmetered."""

from __future__ import annotations

import azure.functions as func

from doow_serverless import DoowTracker, with_azure_function

tracker = DoowTracker()
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@with_azure_function(tracker)
@app.route(route="hello")
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("never metered")

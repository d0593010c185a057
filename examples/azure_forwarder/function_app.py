"""The forwarder's function app: an Event Hub-triggered function, from this package.

A diagnostic setting streams the metered app's FunctionAppLogs to an event hub; the
function registered here reads them and delivers what the SDK's log lines hold (see
docs/azure.md). Nothing else to write: register the blueprint, set the app settings.
"""

from __future__ import annotations

import azure.functions as func

from doow_serverless.forwarders.azure import blueprint

app = func.FunctionApp()
app.register_functions(blueprint)

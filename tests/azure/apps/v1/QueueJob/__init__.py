"""v1 model, queue trigger, sync, the tracker's own decorator."""

from __future__ import annotations

import azure.functions as func

from doow_serverless import default_tracker

tracker = default_tracker()


@tracker.with_azure_function
def main(msg: func.QueueMessage) -> None:
    tracker.track(metric="v1_jobs", quantity=1, license_id="lic_azure_tests")

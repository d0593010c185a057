"""The Event Hubs trigger as the host passes a batch, and what a diagnostic setting sends.

With ``cardinality="many"`` the Functions host hands the worker a batch of event bodies
as one ``collection_bytes`` value (``collection_string`` for string data), with trigger
metadata of arrays, one item per event (``SystemPropertiesArray`` is what the Python
library reads: each event's ``EnqueuedTimeUtc``, ``SequenceNumber``, ``Offset``,
``PartitionKey``), and the ``PartitionContext``.

A diagnostic setting that streams a function app's ``FunctionAppLogs`` to an event hub
sends events whose body is ``{"records": [...]}``: one record per log line, the line in
``properties.message``.
"""

from __future__ import annotations

import base64
import datetime
import itertools
import json
import uuid
from collections.abc import Sequence
from typing import Any

from ._app import TriggerInput

_sequence = itertools.count(1)


def event_hub_batch(
    bodies: Sequence[bytes], *, event_hub: str = "doow-logs", partition: str = "0"
) -> TriggerInput:
    """A batch of events as the host passes it to a ``cardinality="many"`` trigger."""
    now = datetime.datetime.now(datetime.timezone.utc)
    system = []
    for n, _ in enumerate(bodies):
        sequence = next(_sequence)
        system.append(
            {
                "EnqueuedTimeUtc": (now + datetime.timedelta(milliseconds=n)).isoformat(),
                "SequenceNumber": sequence,
                "Offset": str(sequence * 1024),
                "PartitionKey": None,
            }
        )
    metadata = {
        "PartitionContext": _json(
            {
                "ConsumerGroup": "$Default",
                "EventHubName": event_hub,
                "PartitionId": partition,
                "Owner": str(uuid.uuid4()),
            }
        ),
        "SystemPropertiesArray": _json(system),
        "EnqueuedTimeUtcArray": _json([item["EnqueuedTimeUtc"] for item in system]),
        "SequenceNumberArray": _json([item["SequenceNumber"] for item in system]),
        "OffsetArray": _json([item["Offset"] for item in system]),
        "PartitionKeyArray": _json([None for _ in system]),
        "PropertiesArray": _json([{} for _ in system]),
    }
    data = {"collection_bytes": [base64.b64encode(body).decode("ascii") for body in bodies]}
    return TriggerInput(data, metadata)


def diagnostic_records(
    messages: Sequence[str],
    *,
    app_name: str = "local-function-app",
    function_name: str = "hello",
    category: str = "Host.Function.Console",
) -> bytes:
    """One event's body as a diagnostic setting sends ``FunctionAppLogs``: a record a line."""
    now = datetime.datetime.now(datetime.timezone.utc)
    resource = (
        "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000000/RESOURCEGROUPS/LOCAL"
        f"/PROVIDERS/MICROSOFT.WEB/SITES/{app_name.upper()}"
    )
    records = [
        {
            "time": (now + datetime.timedelta(microseconds=n)).isoformat(),
            "resourceId": resource,
            "category": "FunctionAppLogs",
            "operationName": "Microsoft.Web/sites/functions/log",
            "level": "Informational",
            "location": "West Europe",
            "properties": {
                "appName": app_name,
                "roleInstance": "local-role-instance",
                "message": message,
                "category": category,
                "hostVersion": "4.1040.0.0",
                "functionInvocationId": str(uuid.uuid4()),
                "functionName": f"Functions.{function_name}",
                "hostInstanceId": str(uuid.uuid4()),
                "level": "Information",
                "levelId": 2,
                "processId": 42,
            },
        }
        for n, message in enumerate(messages)
    ]
    return json.dumps({"records": records}).encode()


def _json(value: Any) -> dict[str, Any]:
    return {"json": json.dumps(value)}

"""A sandbox's log, as each platform keeps it and its tools export it, for the recovery.

What ``docs/recovery.md`` tells users to run on Vercel and Azure, reproduced from the lines
the function printed: a Vercel Log Drain's NDJSON deliveries, and Application Insights'
``az monitor app-insights query ... | project message`` answer. Only the lines those
filters select are exported; ``doow-serverless replay --log`` then reads the export as a
user's would be read. On AWS the lines the subscription filter selects (the same terms)
reach the forwarder instead (``forwarding.py``).

Lambda Managed Instances log in JSON only: :func:`json_log_record` gives a line of output
as such a record.
"""

from __future__ import annotations

import json
import time
import uuid

# What the documented filters select: the SDK's lines of either kind.
TERMS = ("doow_unsent", "doow_sent")


def selected(lines: list[str]) -> list[str]:
    return [line for line in lines if any(term in line for term in TERMS)]


def vercel_drain_export(lines: list[str]) -> str:
    """A Log Drain's NDJSON deliveries, as a drain endpoint would have saved them."""
    return "".join(
        json.dumps(
            {
                "id": uuid.uuid4().hex,
                "message": line,
                "source": "lambda",
                "type": "stdout",
                "level": "info",
                "timestamp": 1764806400000 + number,
            },
            ensure_ascii=False,
        )
        + "\n"
        for number, line in enumerate(selected(lines))
    )


def app_insights_export(lines: list[str]) -> str:
    """``az monitor app-insights query --analytics-query "traces | ... | project message"``."""
    table = {
        "name": "PrimaryResult",
        "columns": [{"name": "message", "type": "string"}],
        "rows": [[line] for line in selected(lines)],
    }
    return json.dumps({"tables": [table]}, indent=2, ensure_ascii=False) + "\n"


def json_log_record(line: str, request_id: str, when: float | None = None) -> str:
    """A line of a function's output as Lambda's JSON log format keeps it: a record with
    the time, level and request id, the line in its ``message`` (the SDK's own lines then
    arrive as a JSON string inside a JSON string of the export). A line the runtime client
    already wrote as such a record (its logging handler's) is kept as written."""
    if _is_record(line):
        return line
    stamp = time.time() if when is None else when
    record = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp))
        + f".{int(stamp * 1000) % 1000:03d}Z",
        "level": "INFO",
        "requestId": request_id,
        "message": line,
    }
    return json.dumps(record, ensure_ascii=False)


def _is_record(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        document = json.loads(line)
    except ValueError:
        return False
    return isinstance(document, dict) and {"timestamp", "level", "requestId"} <= set(document)

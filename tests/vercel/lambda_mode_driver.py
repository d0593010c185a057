"""Run in the Vercel virtualenv: the runtime in its Lambda mode, called as Lambda would.

Without ``VERCEL_IPC_PATH``, ``vercel_runtime.vc_init`` serves the function on a thread
and exposes ``vc_handler(event, context)``, which answers as soon as it has read the
response. This script imports it, calls ``vc_handler`` for each request, and right after
each call reads the collector's count of stored events; one JSON line per request.

    python lambda_mode_driver.py ENTRY_ABS VARIABLE COLLECTOR_URL PATH COUNT
"""

from __future__ import annotations

import datetime
import importlib
import json
import os
import sys
import time
import urllib.request


def stored(collector_url: str) -> int:
    with urllib.request.urlopen(f"{collector_url}/_doow/stats", timeout=10) as answer:  # noqa: S310
        count: int = json.load(answer)["events_stored"]
        return count


def main() -> None:
    entry, variable, collector_url, path, count = sys.argv[1:6]
    os.environ.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "vercel-lambda-mode",
            "__VC_HANDLER_ENTRYPOINT": os.path.basename(entry),
            "__VC_HANDLER_ENTRYPOINT_ABS": entry,
            "__VC_HANDLER_MODULE_NAME": "index",
            "__VC_HANDLER_VARIABLE_NAME": variable,
        }
    )
    os.environ.pop("VERCEL_IPC_PATH", None)
    vc_init = importlib.import_module("vercel_runtime.vc_init")  # starts the runtime

    for number in range(int(count)):
        deadline = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=10)
        request = {
            "method": "GET",
            "path": path,
            "headers": {
                "host": "localhost",
                "x-vercel-id": f"dev1::lambda-mode-{number}",
                "x-vercel-internal-deadline": deadline.isoformat(timespec="milliseconds"),
            },
            "body": "",
        }
        started = time.monotonic()
        result = vc_init.vc_handler({"body": json.dumps(request)}, None)
        seconds = time.monotonic() - started
        print(
            json.dumps(
                {
                    "status": result["statusCode"],
                    "body": result.get("body", ""),
                    "seconds": seconds,
                    "stored_on_return": stored(collector_url),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()

"""The Log Drain endpoint that delivers what the SDK's log lines hold: nothing to write.

Point a Vercel Log Drain (JSON or NDJSON) at https://<this project>/api/doow-drain and set
DOOW_TRACK_API_KEY and DOOW_TRACK_VERCEL_DRAIN_SECRET (see docs/vercel.md).
"""

from doow_serverless.forwarders.vercel import app

__all__ = ["app"]

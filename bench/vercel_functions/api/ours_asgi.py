"""doow-serverless: one event per request, flushed by with_vercel (after the response)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from doow_serverless import DoowTracker, with_vercel

tracker = DoowTracker()
app = with_vercel(tracker)(FastAPI())


@app.get("/", response_class=PlainTextResponse)
async def index() -> str:
    tracker.track(metric="api_calls", quantity=1, license_id="lic_bench")
    return "ok"

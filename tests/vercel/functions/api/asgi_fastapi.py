"""A FastAPI (ASGI) function: /track?n=2 tracks two events; /background tracks in a
background task after the response; /ping tracks nothing."""

from __future__ import annotations

import asyncio
import os

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import PlainTextResponse

from doow_serverless import DoowTracker, with_vercel

tracker = DoowTracker()
LICENSE_ID = os.environ.get("DOOW_LICENSE_ID", "lic_vercel_tests")

app = with_vercel(tracker)(FastAPI())


@app.get("/track", response_class=PlainTextResponse)
async def track(n: int = 1, sleep_ms: int = 0) -> str:
    await asyncio.sleep(sleep_ms / 1000)
    for _ in range(n):
        tracker.track("api_calls", 1, LICENSE_ID, attribution={"kind": "asgi"})
    return f"tracked {n}"


@app.get("/background", response_class=PlainTextResponse)
async def background(tasks: BackgroundTasks) -> str:
    tracker.track("api_calls", 1, LICENSE_ID, attribution={"kind": "asgi"})
    tasks.add_task(tracker.track, "after_response", 1, LICENSE_ID)
    return "tracked 1, and 1 more after the response"


@app.get("/ping", response_class=PlainTextResponse)
async def ping() -> str:
    return "pong"

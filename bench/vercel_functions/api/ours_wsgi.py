"""doow-serverless: one event per request, flushed by with_vercel (after the response)."""

from __future__ import annotations

from flask import Flask

from doow_serverless import DoowTracker, with_vercel

tracker = DoowTracker()
app = with_vercel(tracker)(Flask(__name__))


@app.get("/")
def index() -> str:
    tracker.track(metric="api_calls", quantity=1, license_id="lic_bench")
    return "ok"

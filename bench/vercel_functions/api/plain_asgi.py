"""No SDK: the FastAPI app the others are measured against."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/", response_class=PlainTextResponse)
async def index() -> str:
    return "ok"

"""No SDK: the Flask app the others are measured against."""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "ok"

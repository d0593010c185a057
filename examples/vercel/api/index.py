"""A Flask API deployed as a Vercel Python function, metered with doow-serverless.

``with_vercel`` flushes each request's usage events within the invocation's deadline: on
Vercel the flush is handed to ``wait_until``, so it runs after the response is sent and
the user does not wait for it. Build and deploy it as README.md says (``vercel build``,
then ``vercel deploy --prebuilt``); try it locally with ``vercel dev`` against a local
collector (see docs/vercel.md).
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from doow_serverless import DoowTracker, with_vercel

# Module level: built once per instance and reused while it stays warm, so the connection
# to Doow made by one request serves the next ones.
tracker = DoowTracker()  # DOOW_TRACK_API_KEY and DOOW_TRACK_ENDPOINT come from the environment

LICENSE_ID = os.environ.get("DOOW_LICENSE_ID", "lic_example")

# Vercel finds the WSGI app as `app`; the wrapper forwards `app.get(...)` and the rest to Flask.
app = with_vercel(tracker)(Flask(__name__))


@app.get("/api/hello")
def hello() -> ResponseReturnValue:
    tracker.track("api_calls", 1, LICENSE_ID, attribution={"route": "/api/hello"})
    return jsonify(message="hello from Vercel")


@app.post("/api/orders")
def create_order() -> ResponseReturnValue:
    order = request.get_json(silent=True) or {}
    items = order.get("items", 1)
    if type(items) is not int or items < 1:
        return jsonify(error="items must be a positive integer"), 400
    tracker.track("api_calls", 1, LICENSE_ID, attribution={"route": "/api/orders"})
    tracker.track("order_items", items, LICENSE_ID, unit="items")
    return jsonify(accepted=items), 201


@app.get("/api/fail")
def fail() -> ResponseReturnValue:
    """A request that fails after it was metered: Flask answers 500, and the event tracked
    before the exception is sent all the same."""
    tracker.track("api_calls", 1, LICENSE_ID, attribution={"route": "/api/fail"})
    raise RuntimeError("the upstream this request needs is down")

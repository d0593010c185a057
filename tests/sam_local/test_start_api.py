"""``sam local start-api`` with warm containers: every request's events arrive once, over
one execution environment kept warm, as API Gateway would call the function."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from doow_serverless._core.wire import event_id_from_seed
from doow_serverless_dev.collector import Collector

from .sam import Sam, reports

pytestmark = pytest.mark.timeout(300)


def test_each_request_s_events_arrive_once_over_a_warm_container(
    sam: Sam, collector: Collector, tmp_path: Path
) -> None:
    log = tmp_path / "sam.log"
    with sam.start_api(log) as api:
        hellos = [api.request("GET", "/hello") for _ in range(3)]
        orders = [api.request("POST", "/orders", json.dumps({"items": 3}).encode())]
        orders.append(api.request("POST", "/orders", json.dumps({"items": 5}).encode()))
        unknown = api.request("GET", "/nowhere")

    assert [(a.status, a.json()) for a in hellos] == [(200, {"message": "hello"})] * 3
    assert [(a.status, a.json()) for a in orders] == [(200, {"items": 3}), (200, {"items": 5})]
    assert unknown.status == 403  # API Gateway's answer for a route the API does not have
    logged = log.read_text()
    found = reports(logged)
    assert len(found) == 5, sam.shown(logged)
    # One cold start, then the same runtime process for every later request.
    assert [report.cold for report in found] == [True] + [False] * 4
    events = collector.events(limit=100)
    ids = Counter(event["event_id"] for event in events)
    assert set(ids.values()) == {1}, ids
    expected = [f"{report.request_id}:0" for report in found]
    expected += [f"{report.request_id}:1" for report in found[3:]]
    assert sorted(ids) == sorted(event_id_from_seed(seed) for seed in expected)
    items = sorted(e["quantity"] for e in events if e["metric"] == "order_items")
    assert items == [3, 5]
    assert collector.stats()["duplicates"] == 0
    assert sam.secret not in logged

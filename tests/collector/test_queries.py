"""GET /events, /stats, /healthz and /, reset, and persistence across restarts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from doow_serverless_dev.collector import Collector

from .helpers import CollectorFactory, batch, client, event, metric_event, post


def _store_mix(collector: Collector) -> None:
    with client(collector) as session:
        post(session, batch([metric_event("tokens", 100, "lic_a"), metric_event("tokens", 50)]))
        post(session, batch([metric_event("requests", 1, "lic_a"), metric_event("tokens", 7)]))
        post(session, batch([metric_event("tokens", 0.5, "lic_a")]))


def test_events_are_listed_newest_first_and_filtered(collector: Collector) -> None:
    _store_mix(collector)
    with client(collector) as session:
        everything = session.get("/events").json()["events"]
        tokens_a = session.get("/events", params={"metric": "tokens", "license_id": "lic_a"})
        licence_only = session.get("/events", params={"license_id": "lic_test"})
        newest_two = session.get("/events", params={"limit": 2, "metric": ""})
    assert [item["quantity"] for item in everything] == [0.5, 7, 1, 50, 100]
    assert [item["quantity"] for item in tokens_a.json()["events"]] == [0.5, 100]
    assert [item["quantity"] for item in licence_only.json()["events"]] == [7, 50]
    assert [item["quantity"] for item in newest_two.json()["events"]] == [0.5, 7]
    assert set(everything[0]) == {
        "event_id", "batch_id", "license_id", "metric", "quantity", "unit", "kind",
        "occurred_at", "source_system", "received_at", "attribution", "metadata",
        "measurements",
    }  # fmt: skip
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", everything[0]["received_at"])
    assert collector.events(metric="requests") == [everything[2]]


@pytest.mark.parametrize("limit", ["0", "1001", "ten", "-1", "1e3"])
def test_a_bad_limit_is_400(collector: Collector, limit: str) -> None:
    with client(collector) as session:
        answer = session.get("/events", params={"limit": limit})
    assert answer.status_code == 400
    assert answer.json()["message"] == "limit must be an integer from 1 to 1000"


def test_stats_break_events_down_by_metric_and_license(collector: Collector) -> None:
    _store_mix(collector)
    post(collector, batch([metric_event("tokens", -1)]))
    with client(collector) as session:
        stats = session.get("/stats").json()
    groups = {
        (row["metric"], row["license_id"]): (row["events"], row["total_quantity"])
        for row in stats["metrics"]
    }
    assert groups == {
        ("tokens", "lic_a"): (2, 100.5),
        ("tokens", "lic_test"): (2, 57),
        ("requests", "lic_a"): (1, 1),
    }
    assert stats["metrics"][0]["last_received_at"] >= stats["metrics"][-1]["last_received_at"]
    assert stats["events_stored"] == 5
    assert (stats["accepted"], stats["rejected"], stats["duplicates"]) == (5, 1, 0)
    assert stats["requests"] == 4
    assert stats["requests_by_status"] == {"202": 3, "207": 1}
    assert stats["connections"] == 3  # two one-shot clients and this one


def test_the_breakdown_counts_only_what_was_stored(collector: Collector) -> None:
    document = batch([metric_event("tokens", 5)])
    for _ in range(3):
        post(collector, document)
    assert collector.stats()["metrics"][0]["events"] == 1
    post(collector, batch([metric_event("tokens", 5)]))
    assert collector.stats()["metrics"][0]["total_quantity"] == 10


def test_reset_forgets_events_and_counters_but_keeps_faults(collector: Collector) -> None:
    _store_mix(collector)
    collector.set_faults({"then": {"status": 503}})
    collector.reset()
    stats = collector.stats()
    assert (stats["events_stored"], stats["requests"], stats["metrics"]) == (0, 0, [])
    assert collector.events() == []
    assert post(collector, batch([event()])).status_code == 503
    collector.clear_faults()
    assert post(collector, batch([event()])).status_code == 202
    assert collector.stats()["metrics"][0]["events"] == 1


def test_healthz(collector: Collector) -> None:
    with client(collector) as session:
        answer = session.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_the_page_is_self_contained(collector: Collector) -> None:
    with client(collector) as session:
        first = session.get("/")
        second = session.get("/")
    assert first.status_code == 200
    assert first.headers["Content-Type"] == "text/html; charset=utf-8"
    page = first.text
    assert "<title>Doow local collector</title>" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "innerHTML" not in page
    policy = first.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce is not None
    assert f'<script nonce="{nonce.group(1)}">' in page
    assert "default-src 'none'" in policy
    assert second.headers["Content-Security-Policy"] != policy


def test_events_survive_a_restart_and_stay_deduplicated(
    collector_factory: CollectorFactory, tmp_path: Path
) -> None:
    db = tmp_path / "events.sqlite3"
    first = collector_factory(db_path=db)
    document = batch([metric_event("tokens", 3), metric_event("tokens", 4)])
    assert post(first, document).status_code == 202
    first.stop()

    second = collector_factory(db_path=db)
    assert second.stats()["events_stored"] == 2
    assert sorted(item["quantity"] for item in second.events()) == [3, 4]
    assert second.events()[0]["metadata"] == {"request_id": "req_1"}
    resent = post(second, document)
    assert (resent.status_code, resent.json()["accepted"]) == (202, 2)
    later = post(second, batch([metric_event("tokens", 5)]))
    assert later.status_code == 202
    stats = second.stats()
    assert (stats["events_stored"], stats["duplicates"]) == (3, 2)
    assert stats["metrics"][0]["total_quantity"] == 12
    assert [item["quantity"] for item in second.events()] == [5, 4, 3]


def test_a_reset_survives_a_restart(collector_factory: CollectorFactory, tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite3"
    first = collector_factory(db_path=db)
    post(first, batch([event()]))
    first.reset()
    post(first, batch([metric_event("after", 1)]))
    first.stop()
    second = collector_factory(db_path=db)
    assert [row["metric"] for row in second.stats()["metrics"]] == ["after"]
    assert second.stats()["events_stored"] == 1

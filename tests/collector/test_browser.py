"""The collector page, rendered by a real headless Chromium: what only its JS could show."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from doow_serverless_dev.collector import Collector

from .helpers import batch, metric_event, post

pytestmark = pytest.mark.browser

HOSTILE_METRIC = "<img src=x onerror=alert(1)>"


def _chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        # Not allowed under `make test` (tests/skips.py): the run fails, saying so.
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    return found


def _render(url: str, profile: Path) -> str:
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


class _Dom(HTMLParser):
    """Rows of each <tbody> by id, texts of elements by id, and every tag name seen."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.texts: dict[str, str] = {}
        self.tags: set[str] = set()
        self._tbody: str | None = None
        self._cell: list[str] | None = None
        self._element: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        ids = dict(attrs).get("id")
        if tag == "tbody" and ids:
            self._tbody = ids
            self.rows[ids] = []
        elif tag == "tr" and self._tbody is not None:
            self.rows[self._tbody].append([])
        elif tag == "td" and self._tbody is not None:
            self._cell = []
        elif ids:
            self._element = ids
            self.texts[ids] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._tbody = None
        elif tag == "td" and self._tbody is not None and self._cell is not None:
            self.rows[self._tbody][-1].append("".join(self._cell))
            self._cell = None
        elif self._element is not None and tag in ("b", "div"):
            self._element = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._element is not None:
            self.texts[self._element] += data


def _store(collector: Collector) -> list[str]:
    sent = [
        metric_event("tokens_expected", 40, "lic_expected"),
        metric_event("tokens_expected", 2, "lic_expected"),
        metric_event(HOSTILE_METRIC, 1, "lic_expected"),
        metric_event("tokens_expected", 7, "lic_other"),
    ]
    assert post(collector, batch(sent)).status_code == 202
    return [item["event_id"] for item in sent]


def test_the_page_shows_received_events(collector: Collector, tmp_path: Path) -> None:
    event_ids = _store(collector)
    dom = _Dom(_render(f"{collector.url}/", tmp_path / "profile"))
    summary = {(row[0], row[1]): row[2:4] for row in dom.rows["summary"]}
    assert summary == {
        ("tokens_expected", "lic_expected"): ["2", "42"],
        (HOSTILE_METRIC, "lic_expected"): ["1", "1"],
        ("tokens_expected", "lic_other"): ["1", "7"],
    }
    recent = dom.rows["events"]
    assert [row[7] for row in recent] == event_ids[::-1]
    assert [row[1:4] for row in recent][-1] == ["tokens_expected", "lic_expected", "40"]
    assert dom.texts["total-stored"] == "4"
    assert dom.texts["status"].startswith("updated ")
    assert "img" not in dom.tags  # the hostile metric name stayed text


def test_the_page_narrows_to_the_expected_metric_and_license(
    collector: Collector, tmp_path: Path
) -> None:
    _store(collector)
    url = f"{collector.url}/?metric=tokens_expected&license_id=lic_expected"
    dom = _Dom(_render(url, tmp_path / "profile"))
    assert [row[:4] for row in dom.rows["summary"]] == [
        ["tokens_expected", "lic_expected", "2", "42"]
    ]
    assert [row[3] for row in dom.rows["events"]] == ["2", "40"]

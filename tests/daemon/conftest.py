"""Fixtures of the daemon's tests: a collector storing to a file, so every row can be read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from doow_serverless_dev.collector import Collector


class Upstream:
    """A collector on 127.0.0.1 whose store is a file (see helpers.stored)."""

    def __init__(self, collector: Collector, db: Path) -> None:
        self.collector = collector
        self.db = db

    @property
    def url(self) -> str:
        return self.collector.url


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    db = tmp_path / "collector.sqlite3"
    with Collector(db_path=db) as collector:
        yield Upstream(collector, db)

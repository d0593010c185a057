"""A local Doow-compatible ingest server for development, demos and tests.

with Collector() as collector:
    ...  # point a tracker at collector.url with any dk_ key
    collector.events(metric="tokens")
"""

from __future__ import annotations

from ._collector import Collector
from ._faults import FaultPlanError

__all__ = ["Collector", "FaultPlanError"]

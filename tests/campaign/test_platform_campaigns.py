"""The Vercel and Azure Functions fault campaigns at CI size: nothing lost or doubled.

Real parts only: Vercel's runtime (vercel-runtime's vc_init, in ``.venv-vercel``) over its
IPC socket, or the Azure library worker (azure-functions-runtime, in ``.venv-azure``) with
the campaign playing the host; the collector; the replay command. The full runs are
``python -m scripts.campaign.vercel_campaign --requests 300`` (docs/reliability-vercel.md)
and ``python -m scripts.campaign.azure_campaign --invocations 300``
(docs/reliability-azure.md). Without a platform's interpreter its test is skipped, except
under ``make test`` or CI (``DOOW_VERCEL_REQUIRED``, ``DOOW_AZURE_REQUIRED`` or ``CI``
set), where it fails, as the tests in tests/vercel and tests/azure do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from scripts.campaign.azure_campaign import AZURE, azure_python
from scripts.campaign.lambda_campaign import Platform
from scripts.campaign.vercel_campaign import VERCEL, vercel_python

from ..azure import conftest as azure_conftest
from ..vercel import conftest as vercel_conftest
from .checks import run_and_check

# The interpreters of the tests in tests/vercel and tests/azure (their fixtures: built with
# make when missing, skipped without them, failed under make test or CI). The campaigns
# must find the same ones.
vercel_interpreter = vercel_conftest.vercel_python
azure_interpreter = azure_conftest.azure_python

CI_COUNT = 40
CI_SEED = 20_251_124


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("platform", "campaign_python", "fixture"),
    [
        pytest.param(VERCEL, vercel_python, "vercel_interpreter", id="vercel"),
        pytest.param(AZURE, azure_python, "azure_interpreter", id="azure"),
    ],
)
def test_campaign_loses_nothing_doubles_nothing_and_misses_no_deadline(
    platform: Platform,
    campaign_python: Callable[[], Path],
    fixture: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    assert campaign_python() == Path(request.getfixturevalue(fixture))
    run_and_check(platform, tmp_path, count=CI_COUNT, seed=CI_SEED)

"""SAM local testing for real: SAM CLI's ``sam local`` commands, the Runtime Interface
Emulator it ships, a container engine, and the collector on the host.

``make sam-local`` (part of ``make test``) prepares the engine and the Lambda-like image
(scripts/sam-local.sh prepare), builds the example (``make sam-check``), and runs these with
``DOCKER_HOST`` set. Anything missing fails them under ``make test`` or CI
(``DOOW_SAM_LOCAL_REQUIRED`` or ``CI``); elsewhere they skip, saying what to run.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from doow_serverless_dev.collector import Collector

from . import commands
from .engine import LAMBDA_IMAGE, NETWORK, Engine, EngineError
from .sam import BUILT_TEMPLATE, REPO, Sam

DEFAULT_SAM = REPO / ".venv-sam" / "bin" / "sam"
ENV_JSON = REPO / commands.ENV_VARS


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("DOOW_SAM_LOCAL_REQUIRED") or os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason + " -- run `make sam-local` (as root) to prepare and run these tests")


def example_environment() -> dict[str, str]:
    document = json.loads(ENV_JSON.read_text())
    return dict(document[commands.FUNCTION])


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    try:
        engine = Engine.from_environment()
        engine.ping()
    except EngineError as exc:
        _unavailable(f"no container engine: {exc}")
    if not engine.has_image(LAMBDA_IMAGE):
        _unavailable(f"the engine has no {LAMBDA_IMAGE} (scripts/sam-local.sh prepare builds it)")
    yield engine
    left = engine.remove_containers_on(NETWORK)
    engine.remove_network(NETWORK)
    if left:
        warnings.warn(f"removed containers SAM left on {NETWORK}: {left}", stacklevel=1)


@pytest.fixture(scope="session")
def sam_collector() -> Iterator[Collector]:
    """The collector, reachable from the functions' containers through the network's
    gateway (so on every address, as the documents' ``--host 0.0.0.0``), accepting only
    the key of examples/lambda/env.json."""
    key = example_environment()["DOOW_TRACK_API_KEY"]
    with Collector(host="0.0.0.0", api_keys=[key]) as collector:
        yield collector


@pytest.fixture
def collector(sam_collector: Collector) -> Iterator[Collector]:
    """The session's collector, emptied, without faults."""
    sam_collector.clear_faults()
    sam_collector.reset()
    yield sam_collector
    sam_collector.clear_faults()


@pytest.fixture(scope="session")
def sam(engine: Engine, sam_collector: Collector, tmp_path_factory: pytest.TempPathFactory) -> Sam:
    executable = Path(os.environ.get("DOOW_SAM") or DEFAULT_SAM)
    if not executable.exists():
        _unavailable(f"no SAM CLI at {executable} (`make sam-check` installs it)")
    if not BUILT_TEMPLATE.exists():
        _unavailable(f"no `sam build` output at {BUILT_TEMPLATE} (`make sam-check` builds it)")
    environment = example_environment()
    endpoint = environment["DOOW_TRACK_ENDPOINT"]
    assert endpoint == "http://host.docker.internal:8787", endpoint
    # The one change to the example's env file: the collector's port.
    environment["DOOW_TRACK_ENDPOINT"] = f"http://host.docker.internal:{sam_collector.port}"
    env_file = tmp_path_factory.mktemp("sam") / "env.json"
    env_file.write_text(json.dumps({commands.FUNCTION: environment}))
    return Sam(
        executable=executable,
        gateway=engine.network_gateway(NETWORK),
        network=NETWORK,
        env_file=env_file,
        secret=environment["DOOW_TRACK_API_KEY"],
    )


@pytest.fixture(scope="session")
def hello_event(sam: Sam, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The GET /hello event, made by ``sam local generate-event`` as the documents say."""
    path = sam.generate_event(commands.GENERATE_HELLO, tmp_path_factory.mktemp("events") / "h")
    committed = json.loads((REPO / commands.HELLO_EVENT).read_text())
    assert json.loads(path.read_text()) == committed, "examples/lambda/events/hello.json drifted"
    return path

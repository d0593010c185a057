"""The commands examples/lambda/README.md and docs/lambda.md give for SAM local testing.

The SAM local check runs these from the repository's root after the README's build (``make
sam-check``), and tests/aws_lambda/test_sam_local_docs.py checks that both documents give them
word for word. What the check changes is where it runs them, never what they do: its own
bridge network (``--docker-network``) and the gateway of it, and a collector on a free port
instead of 8787.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

FUNCTION = "DoowExampleFunction"
ENV_VARS = "examples/lambda/env.json"
HELLO_EVENT = "examples/lambda/events/hello.json"
ORDERS_EVENT = "examples/lambda/events/orders.json"
LOG_FILE = "sam.log"

COLLECTOR = ("doow-serverless", "collector", "--host", "0.0.0.0", "--port", "8787")
EVENTS = ("doow-serverless", "events", "--endpoint", "http://127.0.0.1:8787")

GENERATE_HELLO = (
    *("sam", "local", "generate-event", "apigateway", "aws-proxy"),
    *("--method", "GET", "--path", "hello", "--resource", "/hello", "--body", ""),
)
GENERATE_ORDERS = (
    *("sam", "local", "generate-event", "apigateway", "aws-proxy"),
    *("--method", "POST", "--path", "orders", "--resource", "/orders", "--body", '{"items": 3}'),
)

INVOKE = ("sam", "local", "invoke", FUNCTION, "--event", HELLO_EVENT, "--env-vars", ENV_VARS)
START_API = ("sam", "local", "start-api", "--env-vars", ENV_VARS, "--warm-containers", "EAGER")

# How a function's container reaches the collector on the host: Docker Engine on Linux
# maps host.docker.internal to the host with host-gateway; podman 4.3 refuses host-gateway,
# so the bridge network's gateway is named instead.
DOCKER_HOST_GATEWAY = ("--add-host", "host.docker.internal:host-gateway")
PODMAN_HOST_GATEWAY = ("--add-host", "host.docker.internal:$GATEWAY")
PODMAN_GATEWAY = (
    "GATEWAY=$(podman network inspect podman --format '{{range .Subnets}}{{.Gateway}}{{end}}')"
)
# An image built locally, not pulled (scripts/sam-local.sh prepare on Debian).
LOCAL_IMAGE = ("--skip-pull-image",)

AFTER_RESPONSE = ("--parameter-overrides", "DoowDelivery=after-response")
KEEP_LOG = ("--log-file", LOG_FILE)
REPLAY = ("doow-serverless", "replay", "--log", LOG_FILE)
REPLAY_ENVIRONMENT = (
    "DOOW_TRACK_API_KEY=dk_local_development_key",
    "DOOW_TRACK_ENDPOINT=http://127.0.0.1:8787",
)


def shell(*parts: Sequence[str]) -> str:
    """The command as the documents write it (``$GATEWAY`` left for the shell)."""
    words = [word for part in parts for word in part]
    return " ".join(word if "$GATEWAY" in word else shlex.quote(word) for word in words)


DOCUMENTED = (
    shell(COLLECTOR),
    shell(EVENTS),
    shell(GENERATE_HELLO) + f" > {HELLO_EVENT}",
    shell(GENERATE_ORDERS) + f" > {ORDERS_EVENT}",
    shell(INVOKE, DOCKER_HOST_GATEWAY),
    shell(START_API, DOCKER_HOST_GATEWAY),
    PODMAN_GATEWAY,
    shell(INVOKE, PODMAN_HOST_GATEWAY, LOCAL_IMAGE),
    shell(START_API, PODMAN_HOST_GATEWAY, LOCAL_IMAGE),
    shell(INVOKE, DOCKER_HOST_GATEWAY, AFTER_RESPONSE),
    shell(INVOKE, DOCKER_HOST_GATEWAY, KEEP_LOG),
    " ".join(REPLAY_ENVIRONMENT) + " " + shell(REPLAY),
)

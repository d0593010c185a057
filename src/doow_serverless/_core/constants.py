"""Names and numbers shared by the client and the local collector.

Every environment variable the SDK reads is named here once.
"""

from __future__ import annotations

from typing import Literal

SDK_NAME = "doow-serverless"
SDK_VERSION = "0.1.0"

DEFAULT_ENDPOINT = "https://api.doow.co"
INGEST_PATH = "/telemetry/events"
KEY_PREFIX = "dk_"

# Limits of the ingest contract.
MAX_BATCH_EVENTS = 500
MAX_BATCH_BYTES = 460_800  # 450 KiB of JSON before compression
MAX_RESPONSE_BYTES = 65_536
MAX_SERVER_TEXT = 512

# Defaults of the official SDKs.
DEFAULT_FLUSH_AT = 20
DEFAULT_FLUSH_INTERVAL_S = 10.0
DEFAULT_MAX_QUEUE_SIZE = 10_000
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_RETRY_COUNT = 3
DEFAULT_SHUTDOWN_TIMEOUT_S = 5.0
GZIP_MIN_BYTES = 1024
# gzip level 1: against 6, a third of the CPU for 9-18% more bytes on the wire (a 500-event
# batch: about 1 ms less, 2-5 KB more); `bench/core_bench.py` measures every level.
GZIP_LEVEL = 1
# A batch of at least this many events loads orjson (the `fast` extra) if it is installed:
# importing it costs more than a function's few events a flush can win back.
FAST_JSON_MIN_EVENTS = 100
# Lambda gives a function 512 MB of /tmp by default; the spool takes at most an eighth.
DEFAULT_SPOOL_MAX_BYTES = 64 * 1024 * 1024
SPOOL_DIR_NAME = "doow-spool"
# The daemon's defaults: where it listens, how much it keeps on disk and in memory, and
# how long a stop may take to forward what it holds.
DAEMON_HOST = "127.0.0.1"
DAEMON_PORT = 8788
DAEMON_SPOOL_DIR_NAME = "daemon-spool"
DAEMON_SPOOL_MAX_BYTES = 256 * 1024 * 1024
DAEMON_GRACE_S = 10.0

# Bounds on what one event may carry.
MAX_NAME_LENGTH = 256
MAX_ATTRIBUTION_KEYS = 50
MAX_ATTRIBUTION_KEY_LENGTH = 128
MAX_ATTRIBUTION_VALUE_LENGTH = 1024
MAX_METADATA_BYTES = 16_384

KIND_USAGE = "USAGE"
KIND_ADJUSTMENT = "ADJUSTMENT"
KINDS = (KIND_USAGE, KIND_ADJUSTMENT)
DEFAULT_SOURCE_SYSTEM = "sdk"

ENV_API_KEY = "DOOW_TRACK_API_KEY"
ENV_ENDPOINT = "DOOW_TRACK_ENDPOINT"
ENV_DISABLED = "DOOW_TRACK_DISABLED"
ENV_DEBUG = "DOOW_TRACK_DEBUG"
ENV_FLUSH_AT = "DOOW_TRACK_FLUSH_AT"
ENV_FLUSH_INTERVAL = "DOOW_TRACK_FLUSH_INTERVAL"  # milliseconds, as in the official SDKs
ENV_ATTRIBUTION = "DOOW_TRACK_ATTRIBUTION"
ENV_STRICT = "DOOW_TRACK_STRICT"
ENV_TIMEOUT = "DOOW_TRACK_TIMEOUT"  # milliseconds
ENV_RETRY_COUNT = "DOOW_TRACK_RETRY_COUNT"
ENV_MAX_QUEUE_SIZE = "DOOW_TRACK_MAX_QUEUE_SIZE"
ENV_COMPRESSION = "DOOW_TRACK_COMPRESSION"
ENV_ALLOW_HTTP = "DOOW_TRACK_ALLOW_HTTP"
ENV_SPOOL_DIR = "DOOW_TRACK_SPOOL_DIR"  # a directory, or "off"
ENV_SPOOL_MAX_BYTES = "DOOW_TRACK_SPOOL_MAX_BYTES"
ENV_LOG_UNSENT = "DOOW_TRACK_LOG_UNSENT"
ENV_LOG_AHEAD = "DOOW_TRACK_LOG_AHEAD"
# The platform wrappers' flush (milliseconds, as the other durations).
ENV_FLUSH_TIMEOUT = "DOOW_TRACK_FLUSH_TIMEOUT"
ENV_FLUSH_RESERVE = "DOOW_TRACK_FLUSH_RESERVE"
# How the platform wrappers deliver (see _invocation/delivery.py).
ENV_DELIVERY = "DOOW_TRACK_DELIVERY"
Delivery = Literal["auto", "sync", "after-response", "background", "logs"]
DELIVERIES: tuple[Delivery, ...] = ("auto", "sync", "after-response", "background", "logs")
# Seconds, as "maxDuration" in vercel.json: Vercel's own variables do not carry it.
ENV_VERCEL_MAX_DURATION = "DOOW_TRACK_VERCEL_MAX_DURATION"
# The forwarders (doow_serverless.forwarders): the Log Drain's signature secret and
# ownership token on Vercel; on Azure, the app settings naming the Event Hub the
# diagnostic setting streams to and the connection to it.
ENV_VERCEL_DRAIN_SECRET = "DOOW_TRACK_VERCEL_DRAIN_SECRET"  # noqa: S105 - a name
ENV_VERCEL_DRAIN_VERIFY = "DOOW_TRACK_VERCEL_DRAIN_VERIFY"
ENV_EVENT_HUB_NAME = "DOOW_TRACK_EVENT_HUB_NAME"
ENV_EVENT_HUB_CONNECTION = "DOOW_TRACK_EVENT_HUB_CONNECTION"

# The daemon: the local token its clients present (also read from a file, never a flag),
# and the input the Node CLI reads from its environment (stdin, file:PATH or tcp:PORT).
ENV_DAEMON_TOKEN = "DOOW_TRACK_DAEMON_TOKEN"  # noqa: S105 - a variable name, not a secret
ENV_INPUT = "DOOW_TRACK_INPUT"

# Variables the platforms set, by which the SDK knows where it runs.
ENV_LAMBDA_FUNCTION_NAME = "AWS_LAMBDA_FUNCTION_NAME"
ENV_LAMBDA_RUNTIME_API = "AWS_LAMBDA_RUNTIME_API"
# Lambda Managed Instances: several invocations at once in one environment, never frozen.
ENV_LAMBDA_INITIALIZATION_TYPE = "AWS_LAMBDA_INITIALIZATION_TYPE"
LAMBDA_MANAGED_INSTANCES = "lambda-managed-instances"
ENV_LAMBDA_MAX_CONCURRENCY = "AWS_LAMBDA_MAX_CONCURRENCY"
ENV_VERCEL = "VERCEL"
ENV_VERCEL_IPC_PATH = "VERCEL_IPC_PATH"  # vercel-runtime's IPC mode (Fluid compute)
ENV_AZURE_WORKER_RUNTIME = "FUNCTIONS_WORKER_RUNTIME"
ENV_AZURE_ENVIRONMENT = "AZURE_FUNCTIONS_ENVIRONMENT"

# Hosts where plain http:// is allowed without asking: this machine, and the
# name Docker (and so `sam local`) gives the host from inside a container.
PLAIN_HTTP_HOSTS = frozenset({"localhost", "host.docker.internal"})

LOGGER_NAME = "doow_serverless"

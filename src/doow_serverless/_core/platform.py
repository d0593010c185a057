"""Which serverless platform this process runs on, from the variables each one sets."""

from __future__ import annotations

from collections.abc import Mapping

from .constants import (
    ENV_AZURE_ENVIRONMENT,
    ENV_AZURE_WORKER_RUNTIME,
    ENV_LAMBDA_FUNCTION_NAME,
    ENV_LAMBDA_INITIALIZATION_TYPE,
    ENV_LAMBDA_MAX_CONCURRENCY,
    ENV_LAMBDA_RUNTIME_API,
    ENV_VERCEL,
    ENV_VERCEL_IPC_PATH,
    LAMBDA_MANAGED_INSTANCES,
)

AWS_LAMBDA = "aws-lambda"
VERCEL = "vercel"
AZURE_FUNCTIONS = "azure-functions"


def detect_platform(environ: Mapping[str, str]) -> str | None:
    if environ.get(ENV_LAMBDA_FUNCTION_NAME) or environ.get(ENV_LAMBDA_RUNTIME_API):
        return AWS_LAMBDA
    if environ.get(ENV_VERCEL) or environ.get(ENV_VERCEL_IPC_PATH):
        return VERCEL
    if environ.get(ENV_AZURE_WORKER_RUNTIME) or environ.get(ENV_AZURE_ENVIRONMENT):
        return AZURE_FUNCTIONS
    return None


def vercel_ipc_mode(environ: Mapping[str, str]) -> bool:
    """Vercel's runtime in its IPC mode (Fluid compute): it reports an invocation's end
    only after the work handed to ``wait_until``."""
    return bool(environ.get(ENV_VERCEL_IPC_PATH))


def frozen_after_response(environ: Mapping[str, str]) -> bool:
    """Work after a response could run in a frozen process: Vercel's runtime in its older
    Lambda mode, which answers Lambda as soon as the response body is read."""
    return detect_platform(environ) == AWS_LAMBDA and not vercel_ipc_mode(environ)


def lambda_managed_instances(environ: Mapping[str, str]) -> bool:
    """Lambda Managed Instances: several processes serve invocations at once in one
    environment, which is never frozen, and whose timeouts are not enforced by a kill."""
    return environ.get(ENV_LAMBDA_INITIALIZATION_TYPE) == LAMBDA_MANAGED_INSTANCES or bool(
        environ.get(ENV_LAMBDA_MAX_CONCURRENCY)
    )

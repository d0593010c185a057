"""Which serverless platform this process runs on, from the variables each one sets."""

from __future__ import annotations

from collections.abc import Mapping

AWS_LAMBDA = "aws-lambda"
VERCEL = "vercel"
AZURE_FUNCTIONS = "azure-functions"


def detect_platform(environ: Mapping[str, str]) -> str | None:
    if environ.get("AWS_LAMBDA_FUNCTION_NAME") or environ.get("AWS_LAMBDA_RUNTIME_API"):
        return AWS_LAMBDA
    if environ.get("VERCEL") or environ.get("VERCEL_IPC_PATH"):
        return VERCEL
    if environ.get("FUNCTIONS_WORKER_RUNTIME") or environ.get("AZURE_FUNCTIONS_ENVIRONMENT"):
        return AZURE_FUNCTIONS
    return None

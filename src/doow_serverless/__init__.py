"""doow-serverless: exact usage metering to Doow from serverless functions.

The public API is what this module exports; every other module is private. The platform
wrappers are imported on first use, so ``import doow_serverless`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._client import tracker as _tracker_module
from ._client.sender import FlushResult
from ._client.tracker import DoowTracker, TrackerStats
from ._core.constants import SDK_VERSION as __version__
from ._core.errors import (
    DoowAuthError,
    DoowConfigError,
    DoowDeliveryError,
    DoowError,
    DoowQueueFullError,
    DoowRejectedError,
    DoowValidationError,
    Rejection,
)

if TYPE_CHECKING:
    from ._invocation.engine import default_tracker
    from .aws_lambda import with_lambda
    from .azure_functions import with_azure_function
    from .vercel import with_vercel

# Imported on first use, so ``import doow_serverless`` stays cheap.
_LAZY = {
    "with_azure_function": "azure_functions",
    "with_lambda": "aws_lambda",
    "default_tracker": "_invocation.engine",
    "with_vercel": "vercel",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'doow_serverless' has no attribute {name!r}")
    from importlib import import_module  # noqa: PLC0415

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


_tracker_module.use_platform_wrappers(__getattr__)


__all__ = [
    "DoowAuthError",
    "DoowConfigError",
    "DoowDeliveryError",
    "DoowError",
    "DoowQueueFullError",
    "DoowRejectedError",
    "DoowTracker",
    "DoowValidationError",
    "FlushResult",
    "Rejection",
    "TrackerStats",
    "__version__",
    "default_tracker",
    "with_azure_function",
    "with_lambda",
    "with_vercel",
]

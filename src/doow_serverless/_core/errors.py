"""Exceptions raised or reported by doow-serverless.

    DoowError
    ├── DoowConfigError        a setting that cannot be used (raised at construction)
    ├── DoowValidationError    an event that breaks a rule (reported, or raised in strict mode)
    ├── DoowDeliveryError      a batch that could not be delivered (reported through on_error)
    │   ├── DoowAuthError      the key was refused (401): sending stops, events are kept
    │   └── DoowRejectedError  the server refused events for good (207 or a permanent 4xx)
    └── DoowQueueFullError     events dropped because the queue was full (counted)

No message ever contains the API key: at most a ``dk_…last4`` hint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class DoowError(Exception):
    """Base class of every error doow-serverless raises or reports."""


class DoowConfigError(DoowError, ValueError):
    """A configuration value that cannot be used."""


class DoowValidationError(DoowError, ValueError):
    """An event that breaks a validation rule; the message names the field and the rule."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Rejection(NamedTuple):
    """One event the server refused, with its reason (server text, sanitised)."""

    event_id: str
    reason: str


class DoowDeliveryError(DoowError):
    """A batch that could not be delivered (yet); its events are kept unless said otherwise."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        batch_id: str | None = None,
        event_count: int = 0,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.batch_id = batch_id
        self.event_count = event_count


class DoowAuthError(DoowDeliveryError):
    """The server refused the key (401). Sending stops for this tracker; events are kept."""


class DoowRejectedError(DoowDeliveryError):
    """The server refused events for good: they will not be sent again."""

    def __init__(
        self,
        message: str,
        *,
        rejections: Sequence[Rejection],
        status: int | None = None,
        batch_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, batch_id=batch_id, event_count=len(rejections))
        self.rejections = tuple(rejections)


class DoowQueueFullError(DoowError):
    """Events were dropped because the queue held ``max_queue_size`` events."""

    def __init__(self, message: str, *, dropped: int) -> None:
        super().__init__(message)
        self.dropped = dropped

"""Which invocation an event belongs to, so its id can be derived instead of drawn.

A platform wrapper enters a scope named after the invocation (Lambda's request id,
Vercel's request id, Azure's invocation id). Inside it, the n-th event tracked gets the
id ``uuid5(namespace, "<invocation>:<n>")``: when the platform retries the invocation with
the same id, the same events get the same ids and the server counts them once.

A ``ContextVar`` keeps concurrent invocations apart, in threads and in asyncio tasks alike.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

# How a platform wrapper derives event ids: from the invocation's id (a retry with the same
# id is counted once), or fresh for every attempt.
Idempotency = Literal["invocation", "attempt"]


class InvocationScope:
    """One invocation: its id, and its hard deadline (``time.monotonic()``; None: unknown),
    the moment the platform may kill the process, which no flush work may run past."""

    __slots__ = ("_sequence", "deadline", "invocation_id")

    def __init__(self, invocation_id: str, deadline: float | None = None) -> None:
        self.invocation_id = invocation_id
        self.deadline = deadline
        self._sequence = itertools.count()

    def next_seed(self) -> str:
        # next() on itertools.count is atomic under the GIL: threads sharing the scope
        # still get distinct sequence numbers.
        return f"{self.invocation_id}:{next(self._sequence)}"


current_scope: ContextVar[InvocationScope | None] = ContextVar(
    "doow_serverless_invocation", default=None
)


class _ProcessScope:
    """The scope of a process that runs one invocation at a time (AWS Lambda).

    Threads the handler starts do not inherit its ContextVar; there, events fall back to
    this scope, so a retried invocation derives their ids too.
    """

    current: InvocationScope | None = None


process_scope = _ProcessScope()


def current_invocation() -> InvocationScope | None:
    """The invocation this thread or task works for, if a platform wrapper said so."""
    return current_scope.get() or process_scope.current


@contextmanager
def invocation_scope(
    invocation_id: str, *, process_wide: bool = False, deadline: float | None = None
) -> Iterator[InvocationScope]:
    scope = InvocationScope(invocation_id, deadline)
    token = current_scope.set(scope)
    if process_wide:
        process_scope.current = scope
    try:
        yield scope
    finally:
        current_scope.reset(token)
        if process_wide:
            process_scope.current = None

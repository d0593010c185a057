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


class InvocationScope:
    __slots__ = ("_sequence", "invocation_id")

    def __init__(self, invocation_id: str) -> None:
        self.invocation_id = invocation_id
        self._sequence = itertools.count()

    def next_seed(self) -> str:
        # next() on itertools.count is atomic under the GIL: threads a handler starts
        # within one invocation still get distinct sequence numbers.
        return f"{self.invocation_id}:{next(self._sequence)}"


current_scope: ContextVar[InvocationScope | None] = ContextVar(
    "doow_serverless_invocation", default=None
)


@contextmanager
def invocation_scope(invocation_id: str) -> Iterator[InvocationScope]:
    scope = InvocationScope(invocation_id)
    token = current_scope.set(scope)
    try:
        yield scope
    finally:
        current_scope.reset(token)

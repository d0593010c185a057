"""``doow-serverless send``: pipe mode, one JSON event per line on stdin."""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

from .._core.errors import DoowError, DoowValidationError
from .._core.ndjson import read_line
from ._settings import tracker_settings


def run_send(args: argparse.Namespace, stdin: IO[str] | None = None) -> int:
    from .._client.tracker import DoowTracker  # noqa: PLC0415

    try:
        settings = tracker_settings(args)
        tracker = DoowTracker(strict=True, **settings)
    except (DoowError, OSError, ValueError) as exc:
        print(f"doow-serverless send: {exc}", file=sys.stderr)
        return 2

    malformed = 0
    accepted = 0
    for number, line in enumerate(stdin or sys.stdin, start=1):
        if not line.strip():
            continue
        key = f"{args.idempotency_prefix}:{number}" if args.idempotency_prefix else None
        problem = _track_line(tracker, line, key)
        if problem is None:
            accepted += 1
        else:
            malformed += 1
            print(f"line {number}: {problem}; skipped", file=sys.stderr)

    result = tracker.shutdown(timeout=args.timeout)
    stats = tracker.stats()
    kept = ""
    if stats.persisted:
        where = tracker.config.handover_dir
        command = f"--spool {where}" if where else "--log FILE"
        kept = f" (kept in {where or 'log lines'}: `doow-serverless replay {command}`)"
    print(
        f"{accepted} events read: {stats.delivered} delivered, {stats.rejected} rejected, "
        f"{stats.persisted + stats.pending} not delivered{kept}, {stats.dropped} dropped; "
        f"{malformed} malformed line(s)",
        file=sys.stderr,
    )
    failed = malformed or stats.rejected or stats.dropped or result.pending
    return 1 if failed else 0


def _track_line(tracker: Any, line: str, idempotency_key: str | None) -> str | None:
    arguments = read_line(line)
    if isinstance(arguments, str):
        return arguments
    if idempotency_key and "event_id" not in arguments and "idempotency_key" not in arguments:
        arguments["idempotency_key"] = idempotency_key
    try:
        tracker.track(**arguments)
    except DoowValidationError as exc:
        return str(exc)
    return None

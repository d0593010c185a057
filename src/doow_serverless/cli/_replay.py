"""``doow-serverless replay``: send again what a spool or log lines kept."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import IO

from .._core.errors import DoowError
from ._settings import tracker_settings


def run_replay(args: argparse.Namespace) -> int:
    from .._client.replay import ReplayError, preview, replay, replay_config  # noqa: PLC0415

    if not args.spool and not args.log:
        print("doow-serverless replay: give a --spool DIR or a --log FILE", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as files:
        try:
            logs = [
                (str(path), sys.stdin if str(path) == "-" else files.enter_context(_open_log(path)))
                for path in args.log
            ]
            if args.dry_run:
                summary = preview(spools=args.spool, logs=logs)
            else:
                config = replay_config(tracker_settings(args))
                summary = replay(config, spools=args.spool, logs=logs, timeout=args.timeout)
        except (DoowError, OSError, ValueError, ReplayError) as exc:
            print(f"doow-serverless replay: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(summary.as_dict()))
    verb = "would be sent" if args.dry_run else "still not delivered"
    print(
        f"{summary.found} events found, {summary.unique} distinct: {summary.delivered} "
        f"delivered, {summary.rejected} rejected by the server, {summary.unsent} {verb}; "
        f"{summary.invalid} unreadable; {summary.answered} in lines answered for already",
        file=sys.stderr,
    )
    if args.dry_run:
        return 1 if summary.invalid else 0
    return 1 if summary.unsent or summary.invalid or summary.rejected else 0


def _open_log(path: Path) -> IO[str]:
    return open(path, encoding="utf-8", errors="replace")

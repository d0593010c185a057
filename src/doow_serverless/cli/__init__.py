"""The ``doow-serverless`` command: ``send`` (pipe mode), ``replay`` and ``daemon``.

Other distributions add commands through the entry-point group ``doow_serverless.commands``
(doow-serverless-dev adds ``collector``, ``events`` and ``invoke``): the library never
imports its tools.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._core import constants as C
from ._daemon import add_daemon_command
from ._replay import run_replay
from ._send import run_send
from ._settings import add_connection_options

# Commands that come with doow-serverless-dev, named so that asking for one without it
# installed says where it is, instead of argparse's "invalid choice".
DEV_COMMANDS = ("collector", "events", "invoke")
PLUGIN_GROUP = "doow_serverless.commands"


def main(argv: Sequence[str] | None = None) -> int:
    parser, names = _build()
    arguments = list(sys.argv[1:] if argv is None else argv)
    missing = _missing_dev_command(names, arguments)
    if missing:
        print(
            f"doow-serverless: the {missing!r} command comes with doow-serverless-dev, the "
            "local tools: pip install doow-serverless-dev (from a checkout of this "
            "repository: pip install ./dev)",
            file=sys.stderr,
        )
        return 2
    args = parser.parse_args(arguments)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "debug", False) else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )
    return int(args.run(args))


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def _build() -> tuple[argparse.ArgumentParser, set[str]]:
    """The parser, and the names of the commands it has."""
    parser = argparse.ArgumentParser(
        prog="doow-serverless", description="Usage metering to Doow from serverless functions."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {C.SDK_VERSION}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    send = commands.add_parser(
        "send",
        help="send newline-delimited JSON events from stdin (pipe mode)",
        description=(
            "Read one JSON event per line from stdin, send them in batches, and flush at EOF. "
            "A malformed line is reported with its number and skipped. Exits non-zero when a "
            "line was malformed or an event was not delivered."
        ),
    )
    add_connection_options(send)
    send.add_argument(
        "--timeout", type=float, default=30.0, help="seconds the final flush may take (30)"
    )
    send.add_argument(
        "--idempotency-prefix",
        metavar="TEXT",
        help=(
            "derive each line's event id from TEXT and its line number (lines that carry no "
            "event_id or idempotency_key), so sending the same input again counts nothing twice"
        ),
    )
    send.add_argument("--debug", action="store_true", help="debug logging on stderr")
    send.set_defaults(run=run_send)

    replay = commands.add_parser(
        "replay",
        help="send again the events a spool directory or log lines kept, with the same ids",
        description=(
            "Resend the events that a tracker kept because it could not deliver them: the "
            "batches in a spool directory (those of processes no longer running) and the "
            '"doow_unsent" lines in log files (CloudWatch, Vercel or Azure exports, or a '
            "captured stdout). Events keep their ids, so replaying twice counts nothing twice. "
            "Exits non-zero when an event was not delivered: still unsent (run it again), "
            "refused by the server, or unreadable."
        ),
    )
    replay.add_argument(
        "--spool", action="append", default=[], type=Path, metavar="DIR", help="a spool directory"
    )
    replay.add_argument(
        "--log",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a log file with unsent-event lines ('-' reads stdin)",
    )
    add_connection_options(replay)
    replay.add_argument(
        "--timeout", type=float, default=60.0, help="seconds the sending may take (60)"
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="count what would be sent; send and change nothing"
    )
    replay.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    replay.add_argument("--debug", action="store_true", help="debug logging on stderr")
    replay.set_defaults(run=run_replay)

    add_daemon_command(commands)

    _add_plugin_commands(commands)
    return parser, set(commands.choices)


def _add_plugin_commands(commands: Any) -> None:
    """The commands other installed distributions register (see the module docstring)."""
    from importlib.metadata import entry_points  # noqa: PLC0415 - the CLI only

    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            entry.load()(commands)
        except Exception as exc:  # a broken plugin must not take send and replay down
            print(
                f"doow-serverless: the {entry.name!r} command could not be loaded "
                f"({type(exc).__name__}: {exc})",
                file=sys.stderr,
            )


def _missing_dev_command(names: set[str], arguments: list[str]) -> str | None:
    """The dev command asked for when it is not installed, else None."""
    first = next((word for word in arguments if not word.startswith("-")), None)
    return first if first in DEV_COMMANDS and first not in names else None

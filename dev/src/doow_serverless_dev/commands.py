"""The commands this distribution adds to ``doow-serverless`` (entry points in the group
``doow_serverless.commands``: each receives the command line's sub-parsers)."""

from __future__ import annotations

import argparse
from typing import Any

Commands = Any  # argparse's private _SubParsersAction


def add_collector(commands: Commands) -> None:
    from .collector import _command  # noqa: PLC0415 - loaded only when the CLI runs

    parser: argparse.ArgumentParser = commands.add_parser(
        "collector", help="run a local Doow-compatible ingest server for development"
    )
    _command.configure_collector_parser(parser)
    parser.set_defaults(run=_command.run_collector)


def add_events(commands: Commands) -> None:
    from .collector import _command  # noqa: PLC0415

    parser: argparse.ArgumentParser = commands.add_parser(
        "events", help="list the events a local collector received"
    )
    _command.configure_events_parser(parser)
    parser.set_defaults(run=_command.run_events)


def add_invoke(commands: Commands) -> None:
    from .lambda_local import _command  # noqa: PLC0415

    parser: argparse.ArgumentParser = commands.add_parser(
        "invoke", help="run a SAM template's function locally under the real Lambda runtime"
    )
    _command.configure_invoke_parser(parser)

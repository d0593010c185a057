"""The ``doow-serverless`` command: ``send`` (pipe mode) and ``replay``.

Other distributions add commands through the entry-point group ``doow_serverless.commands``
(doow-serverless-dev adds ``collector``, ``events`` and ``invoke``): the library never
imports its tools.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from .._core import constants as C
from .._core.errors import DoowError, DoowValidationError

# Fields a line may carry, mapped to the tracker's argument names.
_EVENT_FIELDS = {
    "metric": "metric",
    "quantity": "quantity",
    "license_id": "license_id",
    "unit": "unit",
    "attribution": "attribution",
    "metadata": "metadata",
    "kind": "kind",
    "timestamp": "timestamp",
    "occurred_at": "timestamp",
    "event_id": "event_id",
    "idempotency_key": "idempotency_key",
    "source_system": "source_system",
}
_CONFIG_KEYS = {"apiKey", "endpoint", "flushAt", "flushInterval", "attribution", "timeout"}


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
    _add_connection_options(send)
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
    _add_connection_options(replay)
    replay.add_argument(
        "--timeout", type=float, default=60.0, help="seconds the sending may take (60)"
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="count what would be sent; send and change nothing"
    )
    replay.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    replay.add_argument("--debug", action="store_true", help="debug logging on stderr")
    replay.set_defaults(run=run_replay)

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


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    """Where to send, and with which key: flags beat the config file, which beats the env."""
    parser.add_argument(
        "--api-key", help=f"the dk_ key (default: config file, then ${C.ENV_API_KEY})"
    )
    parser.add_argument("--endpoint", help=f"ingest endpoint (default: config, ${C.ENV_ENDPOINT})")
    parser.add_argument("--config", type=Path, help="a JSON config file (apiKey, endpoint, ...)")


def run_send(args: argparse.Namespace, stdin: IO[str] | None = None) -> int:
    from .._client.tracker import DoowTracker  # noqa: PLC0415

    try:
        settings = _send_settings(args)
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
        where = "the spool" if tracker.config.spool_dir else "stdout"
        kept = f" (kept in {where} for `doow-serverless replay`)"
    print(
        f"{accepted} events read: {stats.delivered} delivered, {stats.rejected} rejected, "
        f"{stats.persisted + stats.pending} not delivered{kept}, {stats.dropped} dropped; "
        f"{malformed} malformed line(s)",
        file=sys.stderr,
    )
    failed = malformed or stats.rejected or stats.dropped or result.pending
    return 1 if failed else 0


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
                config = replay_config(_send_settings(args))
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


def _track_line(tracker: Any, line: str, idempotency_key: str | None) -> str | None:
    try:
        document = json.loads(line)
    except ValueError as exc:
        return f"malformed JSON ({exc})"
    if not isinstance(document, dict):
        return f"must be a JSON object, got {type(document).__name__}"
    unknown = sorted(set(document) - set(_EVENT_FIELDS))
    if unknown:
        return f"unknown field(s) {', '.join(map(repr, unknown))}"
    missing = [name for name in ("metric", "quantity", "license_id") if name not in document]
    if missing:
        return f"missing {', '.join(missing)}"
    arguments = {_EVENT_FIELDS[name]: value for name, value in document.items()}
    if idempotency_key and "event_id" not in arguments and "idempotency_key" not in arguments:
        arguments["idempotency_key"] = idempotency_key
    try:
        tracker.track(**arguments)
    except DoowValidationError as exc:
        return str(exc)
    return None


def _send_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Flags beat the config file, which beats the DOOW_TRACK_* variables."""
    config = _read_config(args.config) if args.config else {}
    settings: dict[str, Any] = {}
    api_key = args.api_key or config.get("apiKey")
    if api_key:
        settings["api_key"] = api_key
    endpoint = args.endpoint or config.get("endpoint")
    if endpoint:
        settings["endpoint"] = endpoint
    if "flushAt" in config:
        settings["flush_at"] = config["flushAt"]
    if "flushInterval" in config:
        settings["flush_interval"] = _milliseconds(config["flushInterval"], "flushInterval")
    if "timeout" in config:
        settings["timeout"] = _milliseconds(config["timeout"], "timeout")
    if "attribution" in config:
        settings["attribution"] = config["attribution"]
    if args.debug:
        settings["debug"] = True
    return settings


def _read_config(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"config file {path} is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ValueError(f"config file {path} must hold a JSON object")
    unknown = sorted(set(document) - _CONFIG_KEYS)
    if unknown:
        raise ValueError(f"config file {path} has unknown key(s) {', '.join(map(repr, unknown))}")
    return document


def _milliseconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"config {name} must be a number of milliseconds, got {value!r}")
    return float(value) / 1000.0

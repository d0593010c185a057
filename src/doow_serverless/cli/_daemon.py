"""``doow-serverless daemon``: the command line of the local relay (see ``..daemon``)."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import fields

from .._core import constants as C
from ._settings import add_connection_options


def add_daemon_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    daemon = commands.add_parser(
        "daemon",
        help="run a local relay that processes send events through (daemon or sidecar)",
        description=(
            "Accept events from local processes (Doow's ingest protocol over HTTP, NDJSON "
            "lines over TCP, followed NDJSON files), write each batch to disk (fsync) before "
            "acknowledging it, and forward everything to Doow with the same event ids. "
            "SIGHUP reloads the config file; SIGTERM or SIGINT stops after a last flush."
        ),
    )
    add_connection_options(daemon)
    daemon.add_argument("--pidfile", help="write the pid here; refuse to start if one runs")
    daemon.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help=f"the HTTP ingest (default {C.DAEMON_HOST}:{C.DAEMON_PORT}; 'off' for none)",
    )
    daemon.add_argument("--socket", metavar="PATH", help="the HTTP ingest on a Unix socket too")
    daemon.add_argument(
        "--lines-port", type=int, metavar="PORT", help="NDJSON lines over TCP on 127.0.0.1"
    )
    daemon.add_argument(
        "--follow",
        action="append",
        default=[],
        metavar="FILE",
        help="follow an NDJSON file (repeatable); its cursor is kept on disk",
    )
    daemon.add_argument("--spool-dir", metavar="DIR", help="where batches are kept until sent")
    daemon.add_argument(
        "--spool-max-bytes",
        type=int,
        metavar="N",
        help=f"the spool's bound; full, it answers 429 (default {C.DAEMON_SPOOL_MAX_BYTES})",
    )
    daemon.add_argument(
        "--max-queue-size",
        type=int,
        metavar="N",
        help=f"events held in memory; the rest wait on disk (default {C.DEFAULT_MAX_QUEUE_SIZE})",
    )
    daemon.add_argument(
        "--grace",
        type=float,
        metavar="SECONDS",
        help=f"how long a stop may forward what is held (default {C.DAEMON_GRACE_S:g})",
    )
    daemon.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow --listen on a non-loopback address (needs a local token)",
    )
    daemon.add_argument(
        "--token-file",
        metavar="FILE",
        help=f"the local token clients present as their API key (or ${C.ENV_DAEMON_TOKEN})",
    )
    daemon.add_argument("--debug", action="store_true", help="debug logging on stderr")
    daemon.set_defaults(run=run_daemon)


def run_daemon(args: argparse.Namespace) -> int:
    from ..daemon import Daemon, Flags  # noqa: PLC0415 - only this command needs it

    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
        force=True,
    )
    given = {field.name: getattr(args, field.name) for field in fields(Flags)}
    flags = Flags(**{**given, "follow": tuple(args.follow)})
    return Daemon(flags, args.pidfile).run()

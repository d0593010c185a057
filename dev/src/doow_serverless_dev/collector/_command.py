"""Command-line glue: ``doow-serverless collector`` and ``doow-serverless events``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from doow_serverless._core.constants import ENV_ENDPOINT
from doow_serverless._core.wire import read_error_message, sanitize_server_text

from ._collector import Collector
from ._http import is_loopback, logger
from ._state import MAX_EVENTS_LIMIT

ENV_COLLECTOR_API_KEYS = "DOOW_COLLECTOR_API_KEYS"
DEFAULT_PORT = 8787
DEFAULT_DB = "doow-collector.sqlite3"
MEMORY_DB = ":memory:"
DEFAULT_EVENTS_ENDPOINT = f"http://127.0.0.1:{DEFAULT_PORT}"
_MAX_LISTING_BYTES = 16 * 1_048_576
_MAX_CELL = 40


# -- collector -------------------------------------------------------------------------


def configure_collector_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="TCP port (default: %(default)s; 0 picks a free one)",
    )
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=DEFAULT_DB,
        help=f"SQLite file for received events (default: ./{DEFAULT_DB}; {MEMORY_DB} for none)",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        action="append",
        help=f"accept only this dk_ key (repeatable; default: ${ENV_COLLECTOR_API_KEYS}, "
        "comma-separated, else dev mode: any dk_ key)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="close keep-alive connections idle this long (default: %(default)s)",
    )
    parser.add_argument(
        "--reject-license",
        metavar="LICENSE_ID",
        action="append",
        default=[],
        help="reject events for this license with 'unknown license' (repeatable)",
    )


def run_collector(args: argparse.Namespace) -> int:
    keys = args.api_key or _keys_from_env()
    db_path = None if args.db == MEMORY_DB else Path(args.db).resolve()
    try:
        collector = Collector(
            host=args.host,
            port=args.port,
            db_path=db_path,
            api_keys=keys,
            idle_timeout=args.idle_timeout,
            reject_licenses=args.reject_license,
        )
    except ValueError as exc:
        print(f"doow-serverless collector: {exc}", file=sys.stderr)
        return 2
    with _request_log():
        try:
            collector.start()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            print(
                f"doow-serverless collector: cannot listen on {args.host}:{args.port}: {reason}",
                file=sys.stderr,
            )
            return 1
        except sqlite3.Error as exc:
            print(
                f"doow-serverless collector: cannot use the database {db_path}: {exc}",
                file=sys.stderr,
            )
            return 1
        _print_banner(collector, db_path, keys)
        collector.serve_forever()
    print("doow-serverless collector: stopped", flush=True)
    return 0


def _keys_from_env() -> list[str] | None:
    listed = [key.strip() for key in os.environ.get(ENV_COLLECTOR_API_KEYS, "").split(",")]
    return [key for key in listed if key] or None


def _print_banner(collector: Collector, db_path: Path | None, keys: list[str] | None) -> None:
    where = "in memory (lost on exit)" if db_path is None else str(db_path)
    accepted = "dev mode: any dk_ key" if keys is None else f"{len(keys)} configured key(s)"
    lines = [
        f"Doow collector listening on {collector.url}",
        f"  events stored: {where}",
        f"  API keys:      {accepted}",
        f"  page:          {collector.url}/",
        f"  send events:   {ENV_ENDPOINT}={collector.url}",
    ]
    if not is_loopback(collector.host):
        lines.append(
            "  note: ingest and /events are reachable from the network; "
            "/_doow/* answers loopback clients only"
        )
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)


@contextmanager
def _request_log() -> Iterator[None]:
    """One line per request on stderr, unless the application configured logging itself."""
    if logger.handlers or logging.getLogger().handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


# -- events ----------------------------------------------------------------------------


def configure_events_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help=f"the collector (default: ${ENV_ENDPOINT}, else {DEFAULT_EVENTS_ENDPOINT})",
    )
    parser.add_argument("--metric", help="only events of this metric")
    parser.add_argument("--license-id", help="only events of this license")
    parser.add_argument(
        "--limit", type=_limit, default=20, help="newest N events (default: %(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="print the events as JSON")
    parser.add_argument(
        "--timeout", type=_positive_float, default=5.0, metavar="SECONDS", help=argparse.SUPPRESS
    )


def run_events(args: argparse.Namespace) -> int:
    endpoint = (args.endpoint or os.environ.get(ENV_ENDPOINT) or DEFAULT_EVENTS_ENDPOINT).strip()
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        print(f"doow-serverless events: not an http(s) URL: {endpoint!r}", file=sys.stderr)
        return 2
    query = {"limit": str(args.limit)}
    if args.metric:
        query["metric"] = args.metric
    if args.license_id:
        query["license_id"] = args.license_id
    url = f"{endpoint.rstrip('/')}/events?{urlencode(query)}"
    try:
        events = _fetch_events(url, parts.hostname, args.timeout)
    except _FetchError as exc:
        print(f"doow-serverless events: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(events, indent=2, ensure_ascii=False))
    else:
        print(format_table(events))
    return 0


class _FetchError(Exception):
    pass


def _fetch_events(url: str, hostname: str, timeout: float) -> list[dict[str, Any]]:
    handlers: list[urllib.request.BaseHandler] = []
    if hostname == "localhost" or is_loopback(hostname):
        handlers.append(urllib.request.ProxyHandler({}))  # never send local traffic to a proxy
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(_MAX_LISTING_BYTES)
    except urllib.error.HTTPError as exc:
        message = read_error_message(exc.read(65_536))
        raise _FetchError(f"{url} answered {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _FetchError(f"no collector answering at {url}: {reason}") from None
    try:
        document = json.loads(body)
    except ValueError:
        raise _FetchError(f"{url} did not answer JSON; is it a doow collector?") from None
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list):
        raise _FetchError(f"{url} did not answer an events listing; is it a doow collector?")
    return [event for event in events if isinstance(event, dict)]


_COLUMNS = (
    ("RECEIVED", "received_at"),
    ("METRIC", "metric"),
    ("LICENSE", "license_id"),
    ("QUANTITY", "quantity"),
    ("UNIT", "unit"),
    ("KIND", "kind"),
    ("EVENT ID", "event_id"),
)


def format_table(events: Sequence[dict[str, Any]]) -> str:
    if not events:
        return "No events received (yet)."
    rows = [[title for title, _ in _COLUMNS]]
    rows.extend([_cell(event.get(key)) for _, key in _COLUMNS] for event in events)
    widths = [max(len(row[index]) for row in rows) for index in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.append(f"{len(events)} event(s), newest first")
    return "\n".join(lines)


def _cell(value: object) -> str:
    text = "" if value is None else sanitize_server_text(value)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65_535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return port


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_EVENTS_LIMIT:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_EVENTS_LIMIT}: {text!r}")
    return value

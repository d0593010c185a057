"""``python -m doow_serverless_dev.collector``: the collector, without the rest of the CLI."""

from __future__ import annotations

import argparse
import sys

from ._command import configure_collector_parser, run_collector


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m doow_serverless_dev.collector",
        description="A local Doow-compatible ingest server for development, demos and tests.",
    )
    configure_collector_parser(parser)
    return run_collector(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

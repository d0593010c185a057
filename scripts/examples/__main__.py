"""``python -m scripts.examples vercel|lambda|azure [--root CHECKOUT]``: see the package's doc."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from . import aws_lambda, azure, vercel
from .common import Built
from .readme import ReadmeError, build_commands
from .sizes import describe
from .tools import REPO, run_commands


class Example(NamedTuple):
    folder: str
    built: Callable[[Path], Built]
    inspect: Callable[[Path], list[str]]
    smoke: Callable[[Path], list[str]]


EXAMPLES = {
    "vercel": Example(vercel.FOLDER, vercel.built, vercel.inspect, vercel.smoke),
    "lambda": Example(aws_lambda.FOLDER, aws_lambda.built, aws_lambda.inspect, aws_lambda.smoke),
    "azure": Example(azure.FOLDER, azure.built, azure.inspect, azure.smoke),
}


def check(name: str, root: Path) -> list[str]:
    """Build the example as its README says, then inspect and run the artefact."""
    example = EXAMPLES[name]
    folder = root / example.folder
    try:
        commands = build_commands(folder / "README.md")
    except (ReadmeError, OSError) as exc:
        return [str(exc)]
    started = time.monotonic()
    status = run_commands(commands, folder)
    if status != 0:
        return [f"the README's build commands failed (exit status {status}; their output is above)"]
    built = time.monotonic() - started
    problems = example.inspect(root)
    if problems:
        return problems
    problems = example.smoke(root)
    if problems:
        return problems
    # Measured after the run, which writes nothing into the artefact (no .pyc: its
    # environment says so, as Lambda's read-only task root does; Azure's runs on a copy).
    artefact = example.built(root)
    sizes = describe(artefact.artefact, artefact.site, set(artefact.extras), artefact.python)
    print(f"example-{name}: built in {built:.0f} s: {artefact.artefact.relative_to(root)}: {sizes}")
    archive = artefact.artefact.with_suffix(".zip")
    if archive.is_file():
        print(f"example-{name}: {archive.name}, what is deployed: {archive.stat().st_size:,} bytes")
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.examples", description=__doc__)
    parser.add_argument("example", choices=sorted(EXAMPLES))
    parser.add_argument(
        "--root",
        type=Path,
        default=REPO,
        help="the checkout whose examples/ to build (default: this one)",
    )
    args = parser.parse_args(argv)
    problems = check(args.example, args.root.resolve())
    for problem in problems:
        print(f"example-{args.example}: FAILED: {problem}", file=sys.stderr)
    if not problems:
        print(f"example-{args.example}: the artefact ran under its real runtime; one event arrived")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

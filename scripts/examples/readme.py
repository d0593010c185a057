"""The build commands of an example: the fenced block after the README's build marker."""

from __future__ import annotations

from pathlib import Path

MARKER = "<!-- build"
FENCE = "```"


class ReadmeError(ValueError):
    """The README has no single, well-formed build block."""


def build_commands(readme: Path) -> str:
    """The text of the one fenced block that follows a ``<!-- build`` line."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    starts = [index for index, line in enumerate(lines) if line.startswith(MARKER)]
    if len(starts) != 1:
        raise ReadmeError(f"{readme}: {len(starts)} build markers ({MARKER} ...), not one")
    opening = starts[0] + 1
    if opening >= len(lines) or not lines[opening].startswith(FENCE):
        raise ReadmeError(f"{readme}: the build marker is not followed by a fenced block")
    for end in range(opening + 1, len(lines)):
        if lines[end].startswith(FENCE):
            block = "\n".join(lines[opening + 1 : end]).strip()
            if not block:
                raise ReadmeError(f"{readme}: the build block is empty")
            return block + "\n"
    raise ReadmeError(f"{readme}: the build block is never closed")

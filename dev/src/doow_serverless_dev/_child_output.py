"""The output of a platform runtime run as a child process by the local harnesses."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import IO

# Enough for any test or demo; a runaway child cannot grow it further.
MAX_OUTPUT_LINES = 10_000


def start_pumping(
    stream: IO[bytes], lines: list[str], on_line: Callable[[str], object] | None, name: str
) -> threading.Thread:
    """Read ``stream`` on a daemon thread until it closes.

    Each line is kept in ``lines`` (bounded, for error messages) and passed to ``on_line``.
    """
    thread = threading.Thread(target=_pump, args=(stream, lines, on_line), name=name, daemon=True)
    thread.start()
    return thread


def _pump(stream: IO[bytes], lines: list[str], on_line: Callable[[str], object] | None) -> None:
    with stream:
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if len(lines) < MAX_OUTPUT_LINES:
                lines.append(line)
            if on_line is not None:
                on_line(line)

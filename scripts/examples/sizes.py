"""How big an artefact is, and how much of it this package and what it pulls in are.

Sizes are of the files on disk, each distribution's being the files its ``RECORD`` lists
(its ``.pyc`` files included when they were compiled into the artefact).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement

PACKAGE = "doow-serverless"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def tree_size(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


@dataclass(frozen=True)
class Closure:
    names: tuple[str, ...]  # canonical names, the package first
    size: int


def _dist_infos(site: Path) -> dict[str, Path]:
    found = {}
    for info in site.glob("*.dist-info"):
        metadata = Parser().parsestr((info / "METADATA").read_text(encoding="utf-8"))
        found[canonical(metadata["Name"])] = info
    return found


def _requires(info: Path, extras: set[str], python: str) -> list[tuple[str, set[str]]]:
    metadata = Parser().parsestr((info / "METADATA").read_text(encoding="utf-8"))
    environment = {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    wanted = []
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(
            marker.evaluate({**environment, "extra": extra}) for extra in {"", *extras}
        ):
            wanted.append((canonical(requirement.name), set(requirement.extras)))
    return wanted


def _dist_size(site: Path, info: Path) -> int:
    total = 0
    for row in (info / "RECORD").read_text(encoding="utf-8").splitlines():
        path = site / row.split(",")[0]
        if path.is_file():
            total += path.stat().st_size
    return total


def closure(site: Path, extras: set[str], python: str) -> Closure:
    """This package (with ``extras``) and every distribution it requires, found in ``site``."""
    infos = _dist_infos(site)
    seen: dict[str, set[str]] = {}
    queue = deque([(PACKAGE, extras)])
    while queue:
        name, wanted = queue.popleft()
        known = seen.get(name)
        if name not in infos or (known is not None and wanted <= known):
            continue
        seen[name] = (known or set()) | wanted
        queue.extend(_requires(infos[name], seen[name], python))
    size = sum(_dist_size(site, infos[name]) for name in seen)
    return Closure(tuple(seen), size)


def describe(artefact: Path, site: Path, extras: set[str], python: str) -> str:
    total = tree_size(artefact)
    infos = _dist_infos(site)
    if PACKAGE not in infos:
        return f"{_mb(total)} in all; no {PACKAGE} in {site}"
    core = closure(site, set(), python)
    package = _dist_size(site, infos[PACKAGE])
    lines = [
        f"{_mb(total)} in all; {PACKAGE} {_mb(package)}, with its dependencies "
        f"({', '.join(core.names[1:])}) {_mb(core.size)} ({core.size / total:.1%})"
    ]
    if extras:
        extended = closure(site, extras, python)
        lines.append(
            f"with the [{','.join(sorted(extras))}] extra: {len(extended.names)} distributions, "
            f"{_mb(extended.size)} ({extended.size / total:.1%})"
        )
    return "; ".join(lines)


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.2f} MB"

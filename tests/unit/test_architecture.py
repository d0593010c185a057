"""The package's shape: layers that import only downwards, no import cycle of any kind,
and no import of the local tools (doow-serverless-dev).

Every ``import`` statement counts, wherever it stands: at module level, inside a
function (deferred) or under ``if TYPE_CHECKING:`` (type-only). The layers, bottom up,
are the ones ``docs/architecture.md`` describes.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "doow_serverless"
SOURCE = Path(__file__).resolve().parents[2] / "src" / PACKAGE

# Bottom up. A module may import its own layer and those below, never one above.
LAYERS: list[tuple[str, ...]] = [
    ("_core",),
    ("_delivery",),
    ("_durability",),
    ("_client",),
    ("_invocation",),
    ("aws_lambda", "vercel", "azure_functions", "cli", "daemon"),
    ("forwarders",),
    ("__init__", "__main__"),
]
# Modules of one layer that must not import each other (each platform stands alone; the
# daemon is not one: `cli` runs it).
APART = {"aws_lambda", "vercel", "azure_functions", "cli"}


def module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(SOURCE).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in SOURCE.rglob("*.py")}


def top_part(module: str) -> str:
    """The first name below the package (``__init__`` for the package itself)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def layer_of(module: str) -> int:
    part = top_part(module)
    for index, names in enumerate(LAYERS):
        if part in names:
            return index
    raise AssertionError(f"{module} belongs to no layer: add its folder to LAYERS")


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """Every module this one imports (any package's), with the line of the import."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                yield (submodule if submodule in MODULES else target), node.lineno


def internal_edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for module in MODULES:
        for target, _ in imports_of(module):
            if target in MODULES and target != module:
                graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = iter(range(10**9))

    def visit(node: str) -> None:
        index[node] = low[node] = next(counter)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_package_has_the_layers_it_is_checked_against() -> None:
    assert {top_part(module) for module in MODULES} == {name for names in LAYERS for name in names}


def test_there_is_no_import_cycle_of_any_kind() -> None:
    assert cycles(internal_edges()) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_only_downwards(module: str) -> None:
    own = layer_of(module)
    for target, line in imports_of(module):
        if target not in MODULES:
            continue
        where = f"{MODULES[module].name}:{line} imports {target}"
        assert layer_of(target) <= own, where
        if top_part(module) in APART and top_part(target) in APART:
            assert top_part(module) == top_part(target), where


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_the_local_tools(module: str) -> None:
    for target, line in imports_of(module):
        assert not target.startswith("doow_serverless_dev"), f"{module}:{line}"

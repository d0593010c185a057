"""The build block of a README: what `make example-*` runs, exactly as written."""

from __future__ import annotations

from pathlib import Path

import pytest
from scripts.examples.readme import ReadmeError, build_commands

from ..examples_built import REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "README.md"
    path.write_text(text)
    return path


def test_the_block_after_the_marker_is_the_build(tmp_path: Path) -> None:
    readme = write(
        tmp_path,
        "# Example\n```bash\necho not this one\n```\n<!-- build: checked -->\n"
        "```bash\npip wheel .\nvercel build\n```\n```bash\nvercel deploy\n```\n",
    )
    assert build_commands(readme) == "pip wheel .\nvercel build\n"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("```bash\nvercel build\n```\n", "0 build markers"),
        ("<!-- build -->\n```\na\n```\n<!-- build -->\n```\nb\n```\n", "2 build markers"),
        ("<!-- build -->\nvercel build\n", "not followed by a fenced block"),
        ("<!-- build -->\n```bash\nvercel build\n", "never closed"),
        ("<!-- build -->\n```bash\n\n```\n", "empty"),
    ],
)
def test_a_readme_without_one_clear_build_block_is_refused(
    tmp_path: Path, text: str, why: str
) -> None:
    with pytest.raises(ReadmeError, match=why):
        build_commands(write(tmp_path, text))


@pytest.mark.parametrize(
    ("example", "tool"),
    [
        ("lambda", "sam build"),
        ("vercel", "vercel build"),
        ("azure", "scripts/azure_package.py"),
    ],
)
def test_each_example_builds_with_its_platforms_tool(example: str, tool: str) -> None:
    commands = build_commands(REPO / "examples" / example / "README.md")
    assert tool in commands
    assert "pip wheel --no-deps" in commands  # this package, from a wheel of the checkout

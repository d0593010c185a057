"""The SAM local commands users read are the ones ``make sam-local`` runs: word for word in
the example's README and in docs/lambda.md (tests/sam_local/commands.py)."""

from __future__ import annotations

import re

import pytest

from tests.sam_local import commands

from .conftest import REPO

DOCUMENTS = ("examples/lambda/README.md", "docs/lambda.md")


def commands_in(document: str) -> str:
    """The document's text with continued lines (a trailing backslash) joined."""
    return re.sub(r"\\\n\s*", " ", (REPO / document).read_text())


@pytest.mark.parametrize("document", DOCUMENTS)
@pytest.mark.parametrize("command", commands.DOCUMENTED)
def test_the_documents_give_the_commands_the_check_runs(document: str, command: str) -> None:
    assert command in commands_in(document)


def test_the_check_runs_what_the_podman_commands_say() -> None:
    from tests.sam_local.sam import Sam

    sam = Sam(
        executable=REPO / ".venv-sam" / "bin" / "sam",
        gateway="10.89.0.1",
        network="doow-sam-local-tests",
        env_file=REPO / "env.json",
        secret="dk_x",
    )
    argv = sam.argv(commands.INVOKE, commands.PODMAN_HOST_GATEWAY, commands.LOCAL_IMAGE)

    documented = commands.shell(commands.INVOKE, commands.PODMAN_HOST_GATEWAY, commands.LOCAL_IMAGE)
    expected = documented.replace("$GATEWAY", "10.89.0.1").replace(
        commands.ENV_VARS, str(REPO / "env.json")
    )
    assert " ".join(argv[1:]) == expected.removeprefix("sam ") + (
        " --docker-network doow-sam-local-tests"
    )

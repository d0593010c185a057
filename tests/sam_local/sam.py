"""Running SAM CLI's local commands as a user runs them (tests/sam_local/commands.py), from the
repository's root after the README's build, on this machine's engine: its network, gateway,
env file and image."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import commands

REPO = Path(__file__).resolve().parents[2]
# Where `sam build` writes, as the example's README runs it (make sam-check), and where
# `sam local` looks by default.
BUILT_TEMPLATE = REPO / ".aws-sam" / "build" / "template.yaml"
_API_KEY = re.compile(r"dk_[A-Za-z0-9_\-]+")
_REPORT = re.compile(
    r"REPORT RequestId: (\S+)\t(?:Init Duration: [\d.]+ ms\t)?Duration: ([\d.]+) ms"
)


@dataclass(frozen=True)
class Report:
    """RIE's REPORT line: one per invocation, once it is complete."""

    request_id: str
    duration_ms: float
    cold: bool


def reports(log: str) -> list[Report]:
    found = []
    for line in log.splitlines():
        match = _REPORT.search(line)
        if match:
            found.append(Report(match[1], float(match[2]), "Init Duration" in line))
    return found


@dataclass
class Run:
    """One finished ``sam local invoke``."""

    returncode: int
    stdout: str
    stderr: str
    log: str
    seconds: float

    @property
    def response(self) -> dict[str, Any]:
        """What the function answered: SAM prints it on stdout, or with --log-file in the
        log, where the emulator's and the runtime's own lines may follow it."""
        for line in reversed((self.stdout or self.log).splitlines()):
            if line.startswith('{"statusCode"'):
                # SAM writes no newline after it: the emulator's next line may follow.
                document, _ = json.JSONDecoder().raw_decode(line)
                assert isinstance(document, dict)
                return document
        output = _API_KEY.sub("dk_***", self.stdout or self.log)
        raise AssertionError(f"no response from the function: {output[-3000:]}")


@dataclass(frozen=True)
class Sam:
    """SAM CLI (``sam``), where the check runs it."""

    executable: Path
    gateway: str
    network: str
    env_file: Path
    secret: str  # never in what a test prints
    environment: Mapping[str, str] = field(default_factory=dict)

    def argv(
        self, command: Sequence[str], *extra: Sequence[str], template: Path = BUILT_TEMPLATE
    ) -> list[str]:
        """A documented command, with this machine's engine set-up."""
        argv = [str(self.executable), *command[1:]]
        for part in extra:
            argv += [word.replace("$GATEWAY", self.gateway) for word in part]
        if command[:3] != commands.GENERATE_HELLO[:3]:
            argv = [str(self.env_file) if word == commands.ENV_VARS else word for word in argv]
            argv += ["--docker-network", self.network]
            if template != BUILT_TEMPLATE:
                argv += ["--template", str(template)]
        return argv

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, "SAM_CLI_TELEMETRY": "0", **self.environment, **(extra or {})}

    def shown(self, text: str) -> str:
        """``text`` fit for a failure message: API keys blanked, the end kept."""
        return _API_KEY.sub("dk_***", text.replace(self.secret, "dk_***"))[-6000:]

    def generate_event(self, command: Sequence[str], path: Path) -> Path:
        done = subprocess.run(
            self.argv(command), capture_output=True, text=True, check=False, env=self.env()
        )
        assert done.returncode == 0, self.shown(done.stderr)
        path.write_text(done.stdout)
        return path

    def invoke(
        self,
        event: Path,
        *extra: Sequence[str],
        log_file: Path | None = None,
        template: Path = BUILT_TEMPLATE,
        environment: Mapping[str, str] | None = None,
        timeout: float = 180,
    ) -> Run:
        argv = self.argv(
            commands.INVOKE, commands.PODMAN_HOST_GATEWAY, commands.LOCAL_IMAGE, template=template
        )
        argv = [str(event) if word == commands.HELLO_EVENT else word for word in argv]
        for part in extra:
            argv += list(part)
        if log_file is not None:
            argv += ["--log-file", str(log_file)]
        started = time.monotonic()
        done = subprocess.run(
            argv,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=self.env(environment),
        )
        return Run(
            done.returncode,
            done.stdout,
            done.stderr,
            log_file.read_text() if log_file is not None and log_file.exists() else done.stderr,
            time.monotonic() - started,
        )

    @contextmanager
    def start_api(self, log_file: Path, *extra: Sequence[str]) -> Iterator[Api]:
        port = _free_port()
        argv = self.argv(commands.START_API, commands.PODMAN_HOST_GATEWAY, commands.LOCAL_IMAGE)
        for part in extra:
            argv += list(part)
        argv += ["--port", str(port), "--log-file", str(log_file)]
        output = log_file.with_suffix(".out")
        with output.open("w") as sink:
            process = subprocess.Popen(
                argv, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, env=self.env()
            )
        api = Api(f"http://127.0.0.1:{port}", process, output)
        try:
            api.wait_until_serving(self)
            yield api
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # SAM removes its warm containers
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@dataclass
class Answer:
    status: int
    body: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Api:
    """``sam local start-api`` running: the example's routes at ``url``."""

    url: str
    process: subprocess.Popen[bytes]
    output: Path

    def wait_until_serving(self, sam: Sam, timeout: float = 120) -> None:
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            if self.process.poll() is not None:
                break
            try:
                self.request("GET", "/_not_a_route")
                return
            except OSError:
                time.sleep(0.25)
        output = self.output.read_text() if self.output.exists() else ""
        raise AssertionError(f"sam local start-api is not serving: {sam.shown(output)}")

    def request(self, method: str, path: str, body: bytes | None = None) -> Answer:
        request = urllib.request.Request(self.url + path, data=body, method=method)  # noqa: S310
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        started = time.monotonic()
        try:
            with opener.open(request, timeout=60) as response:
                return Answer(response.status, response.read().decode(), time.monotonic() - started)
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read().decode(), time.monotonic() - started)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

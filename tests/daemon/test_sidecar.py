"""The sidecar and host examples (examples/daemon/): no container engine here, so the image
is not built, but the command it runs, its health check and the unit's command are run as
processes, with only paths and ports put in place; the Kubernetes example is checked
against them."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from doow_serverless.daemon._settings import Flags, load

from .conftest import Upstream
from .helpers import KEY, DaemonProcess, finish, free_port, start_client, stored, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "daemon"
IMAGE_CONFIG = "/etc/doow-serverless/doow-track.json"
IMAGE_SPOOL = "/var/lib/doow-serverless/spool"


def dockerfile() -> dict[str, Any]:
    """Its instructions, the exec forms as lists."""
    text = (EXAMPLES / "Dockerfile").read_text().replace("\\\n", " ")
    found: dict[str, Any] = {}
    for line in text.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("ENTRYPOINT", "CMD", "USER", "VOLUME"):
            found[word] = json.loads(rest) if rest.startswith("[") else rest.strip()
        elif word == "HEALTHCHECK":
            found[word] = json.loads(rest[rest.index("CMD ") + 4 :])
    return found


def as_process(command: list[str], replacements: dict[str, str]) -> list[str]:
    """The image's (or the unit's) command with this machine's paths: the console script
    as ``python -m doow_serverless``."""
    replaced = [replacements.get(word, word) for word in command]
    script = replaced.index(next(word for word in replaced if word.endswith("doow-serverless")))
    return [sys.executable, "-m", "doow_serverless", *replaced[script + 1 :]]


def example_config(tmp_path: Path, upstream: Upstream, port: int) -> Path:
    config = json.loads((EXAMPLES / "doow-track.json").read_text())
    config.update(endpoint=upstream.url, listen=f"127.0.0.1:{port}")
    path = tmp_path / "doow-track.json"
    path.write_text(json.dumps(config))
    return path


def test_the_images_command_runs_the_daemon_and_its_health_check_passes(
    upstream: Upstream, tmp_path: Path
) -> None:
    image = dockerfile()
    assert image["ENTRYPOINT"][:2] == ["doow-serverless", "daemon"]  # exec form: PID 1
    assert image["USER"] not in ("", "root", "0")
    assert image["VOLUME"] == "/var/lib/doow-serverless"
    port = free_port()
    config = example_config(tmp_path, upstream, port)
    command = as_process(
        image["ENTRYPOINT"] + image["CMD"],
        {IMAGE_CONFIG: str(config), IMAGE_SPOOL: str(tmp_path / "spool")},
    )
    running = DaemonProcess(tmp_path, upstream.url, env={"DOOW_TRACK_API_KEY": KEY}, port=port)
    running.arguments = command
    try:
        running.start()
        health = [word.replace(":8788", f":{port}") for word in image["HEALTHCHECK"]]
        health[0] = sys.executable
        assert subprocess.run(health, timeout=30, check=False).returncode == 0
        [report] = finish([start_client("ours", running.url, "sidecar", 500)])
        assert report["delivered"] == 500
        running.wait_drained()
        assert running.stop() == 0
    finally:
        running.close()
    assert len(stored(upstream.db)) == 500
    assert KEY not in running.log
    health_after = subprocess.run(health, timeout=30, capture_output=True, check=False)
    assert health_after.returncode != 0  # the check fails once the daemon is gone


def test_the_kubernetes_example_runs_that_image_as_a_sidecar_the_app_can_reach(
    tmp_path: Path,
) -> None:
    documents = {
        document["kind"]: document
        for document in yaml.safe_load_all((EXAMPLES / "kubernetes.yaml").read_text())
    }
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    [sidecar] = pod["initContainers"]
    [app] = pod["containers"]
    image = dockerfile()
    assert sidecar["restartPolicy"] == "Always"  # a native sidecar: stopped after the app
    assert sidecar["args"] == image["CMD"]
    probe = ["python", *image["HEALTHCHECK"][1:]]
    assert sidecar["startupProbe"]["exec"]["command"] == probe
    assert sidecar["livenessProbe"]["exec"]["command"] == probe
    [key] = [item for item in sidecar["env"] if item["name"] == "DOOW_TRACK_API_KEY"]
    assert "secretKeyRef" in key["valueFrom"]  # the key from a Secret, not the manifest
    config_text = documents["ConfigMap"]["data"]["doow-track.json"]
    config = json.loads(config_text)
    app_env = {item["name"]: item["value"] for item in app["env"]}
    assert app_env["DOOW_TRACK_ENDPOINT"] == f"http://{config['listen']}"
    assert app_env["DOOW_TRACK_API_KEY"].startswith("dk_")
    assert pod["terminationGracePeriodSeconds"] > config["shutdownTimeout"] / 1000
    mounts = {mount["mountPath"] for mount in sidecar["volumeMounts"]}
    assert {str(Path(IMAGE_CONFIG).parent), image["VOLUME"]} <= mounts
    # The config map is one the daemon accepts.
    path = tmp_path / "doow-track.json"
    path.write_text(config_text)
    settings = load(Flags(config=path), {"DOOW_TRACK_API_KEY": KEY, "HOME": str(tmp_path)})
    assert settings.listen == ("127.0.0.1", 8788)
    assert settings.grace == config["shutdownTimeout"] / 1000


def test_the_systemd_units_command_runs_the_daemon_and_reload_is_sighup(
    upstream: Upstream, tmp_path: Path
) -> None:
    unit = {}
    for line in (EXAMPLES / "doow-serverless-daemon.service").read_text().splitlines():
        name, equals, value = line.partition("=")
        if equals and not line.startswith("#"):
            unit[name] = value
    assert unit["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert unit["KillSignal"] == "SIGTERM"
    grace = json.loads((EXAMPLES / "doow-track.json").read_text())["shutdownTimeout"] / 1000
    assert int(unit["TimeoutStopSec"]) > grace
    port = free_port()
    config = example_config(tmp_path, upstream, port)
    pidfile = tmp_path / "daemon.pid"
    command = as_process(
        shlex.split(unit["ExecStart"]),
        {
            "/etc/doow-serverless/doow-track.json": str(config),
            "/run/doow-serverless/daemon.pid": str(pidfile),
            IMAGE_SPOOL: str(tmp_path / "spool"),
        },
    )
    running = DaemonProcess(tmp_path, upstream.url, env={"DOOW_TRACK_API_KEY": KEY}, port=port)
    running.arguments = command
    try:
        running.start()
        assert running.process is not None
        assert pidfile.read_text() == f"{running.process.pid}\n"
        running.signal(signal.SIGHUP)  # what `systemctl reload` sends
        wait_until(lambda: "settings reloaded" in running.log, 10, "the reload")
        assert running.stop() == 0
    finally:
        running.close()
    assert re.search(r"with key dk_…[0-9a-z]{4}", running.log)

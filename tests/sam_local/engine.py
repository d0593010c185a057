"""The container engine SAM CLI uses, through the same Docker API it uses (``DOCKER_HOST``).

Only what the tests need from it: is it there, is the Lambda image there, the tests' own
bridge network (and its gateway: the host, as the function's containers see it), and the
containers SAM left on that network, if any.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any
from urllib.parse import quote

LAMBDA_IMAGE = "public.ecr.aws/lambda/python:3.12-x86_64"
NETWORK = "doow-sam-local-tests"


class EngineError(Exception):
    pass


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class Engine:
    def __init__(self, docker_host: str, timeout: float = 30.0) -> None:
        if not docker_host.startswith("unix://"):
            raise EngineError(f"DOCKER_HOST={docker_host!r}: the tests speak to a unix socket")
        self.docker_host = docker_host
        self._path = docker_host.removeprefix("unix://")
        self._timeout = timeout

    @classmethod
    def from_environment(cls) -> Engine:
        docker_host = os.environ.get("DOCKER_HOST", "")
        if not docker_host:
            raise EngineError("DOCKER_HOST is not set (scripts/sam-local.sh run sets it)")
        return cls(docker_host)

    def request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        connection = _UnixConnection(self._path, self._timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload else {}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except OSError as exc:
            raise EngineError(f"no engine answering at {self.docker_host}: {exc}") from None
        finally:
            connection.close()
        try:
            return response.status, json.loads(data) if data else None
        except ValueError:
            return response.status, data.decode("utf-8", "replace")

    def ping(self) -> None:
        status, answer = self.request("GET", "/_ping")
        if status != 200:
            raise EngineError(f"{self.docker_host} answered {status} to /_ping: {answer}")

    def has_image(self, tag: str) -> bool:
        status, _ = self.request("GET", f"/images/{quote(tag, safe='')}/json")
        return status == 200

    def network_gateway(self, name: str = NETWORK) -> str:
        """The gateway of the bridge network ``name`` (created if missing)."""
        status, network = self.request("GET", f"/networks/{name}")
        if status == 404:
            status, network = self.request(
                "POST", "/networks/create", {"Name": name, "Driver": "bridge"}
            )
            if status not in (200, 201):
                raise EngineError(f"cannot create network {name}: {status} {network}")
            status, network = self.request("GET", f"/networks/{name}")
        if status != 200:
            raise EngineError(f"cannot inspect network {name}: {status} {network}")
        for config in (network.get("IPAM") or {}).get("Config") or []:
            if config.get("Gateway"):
                return str(config["Gateway"])
        raise EngineError(f"network {name} has no gateway: {network}")

    def remove_network(self, name: str = NETWORK) -> None:
        self.request("DELETE", f"/networks/{name}")

    def remove_images(self, repository: str) -> list[str]:
        """Remove the images of ``repository`` (what SAM built for a test's layers)."""
        status, images = self.request("GET", "/images/json")
        if status != 200:
            return []
        removed = []
        for image in images:
            if any(tag.startswith(repository + ":") for tag in image.get("RepoTags") or []):
                self.request("DELETE", f"/images/{image['Id']}?force=1")
                removed.append(str(image["Id"])[:12])
        return removed

    def remove_containers_on(self, network: str = NETWORK) -> list[str]:
        """Remove the containers attached to ``network`` (SAM's, if it left any)."""
        filters = quote(json.dumps({"network": [network]}))
        status, containers = self.request("GET", f"/containers/json?all=1&filters={filters}")
        if status != 200:
            return []
        removed = []
        for container in containers:
            self.request("DELETE", f"/containers/{container['Id']}?force=1")
            removed.append(str(container["Id"])[:12])
        return removed

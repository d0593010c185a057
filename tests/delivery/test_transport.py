"""The HTTP edge: a proxy named by the environment, and requests that bypass it."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from doow_serverless import DoowTracker
from doow_serverless._delivery.transport import proxy_for
from doow_serverless_dev.collector import Collector

from .conftest import KEY, track_many


class ForwardProxy(ThreadingHTTPServer):
    """A plain-HTTP forward proxy on 127.0.0.1 that remembers what it forwarded."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.forwarded: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: ForwardProxy
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        target = urlsplit(self.path)  # a proxy receives the absolute URL
        self.server.forwarded.append(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=5)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
        upstream.request("POST", target.path, body=body, headers=headers)
        answer = upstream.getresponse()
        payload = answer.read()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        upstream.close()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    server = ForwardProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_requests_go_through_the_proxy_the_environment_names(
    collector: Collector, proxy: ForwardProxy, variable: str
) -> None:
    environ = {"AWS_LAMBDA_FUNCTION_NAME": "test", variable: proxy.url}
    tracker = DoowTracker(KEY, endpoint=collector.url, environ=environ)
    track_many(tracker, 3)
    assert tracker.flush(timeout=5).delivered == 3
    assert proxy.forwarded == [f"{collector.url}/telemetry/events"]
    assert collector.stats()["events_stored"] == 3
    tracker.shutdown(timeout=1)


def test_no_proxy_sends_directly(collector: Collector, proxy: ForwardProxy) -> None:
    environ = {"AWS_LAMBDA_FUNCTION_NAME": "test", "HTTP_PROXY": proxy.url, "NO_PROXY": "127.0.0.1"}
    tracker = DoowTracker(KEY, endpoint=collector.url, environ=environ)
    track_many(tracker, 2)
    assert tracker.flush(timeout=5).delivered == 2
    assert proxy.forwarded == []
    tracker.shutdown(timeout=1)


@pytest.mark.parametrize(
    ("url", "environ", "expected"),
    [
        ("https://api.doow.co/x", {"HTTPS_PROXY": "http://p:3128"}, "http://p:3128"),
        ("https://api.doow.co/x", {"HTTP_PROXY": "http://p:3128"}, None),
        ("https://api.doow.co/x", {"ALL_PROXY": "http://p:1"}, "http://p:1"),
        ("https://api.doow.co/x", {"HTTPS_PROXY": "http://p", "NO_PROXY": "doow.co"}, None),
        ("https://api.doow.co/x", {"HTTPS_PROXY": "http://p", "no_proxy": ".doow.co"}, None),
        ("https://api.doow.co/x", {"HTTPS_PROXY": "http://p", "NO_PROXY": "*"}, None),
        ("https://api.doow.co/x", {"HTTPS_PROXY": "http://p", "NO_PROXY": "w.co"}, "http://p"),
        ("https://api.doow.co/x", {}, None),
    ],
)
def test_which_proxy_applies(url: str, environ: dict[str, str], expected: str | None) -> None:
    assert proxy_for(url, environ) == expected

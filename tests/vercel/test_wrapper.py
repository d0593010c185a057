"""with_vercel in process: its forms, the objects it returns, ids, budgets and flush points.

Apps are driven through their own interfaces (Flask's WSGI test client, raw ASGI calls on
an event loop, http.server on 127.0.0.1); events go to the real collector. Vercel's
runtime is not in this interpreter, so there is no deadline from it and no wait_until:
the budget comes from ``max_duration`` and the flush runs at the end of the response.
The same wrappers under the real runtime are in test_runtime.py.
"""

from __future__ import annotations

import asyncio
import http.client
import inspect
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import Client as WerkzeugClient

from doow_serverless import DoowConfigError, DoowTracker, with_vercel
from doow_serverless._invocation import engine as _invocation
from doow_serverless.vercel import (
    DEFAULT_MAX_DURATION_S,
    ENV_MAX_DURATION,
    default_tracker,
    resolve_max_duration,
)
from doow_serverless_dev.collector import Collector

from .conftest import TEST_KEY

LICENSE = "lic_unit"
VERCEL_ENVIRON = {"VERCEL": "1"}  # in-process trackers behave as on Vercel: no flusher thread

Scope = dict[str, Any]
Message = dict[str, Any]


@pytest.fixture
def tracker(vercel_collector: Collector) -> Iterator[DoowTracker]:
    tracker = DoowTracker(TEST_KEY, endpoint=vercel_collector.url, environ=VERCEL_ENVIRON)
    yield tracker
    tracker.shutdown(timeout=1.0)


@pytest.fixture(autouse=True)
def not_on_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests run as on Vercel's IPC mode unless one opts into its Lambda mode."""
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("VERCEL_IPC_PATH", raising=False)
    monkeypatch.delenv(ENV_MAX_DURATION, raising=False)


def track_one(tracker: DoowTracker, metric: str = "api_calls") -> None:
    tracker.track(metric=metric, quantity=1, license_id=LICENSE)


def flask_app(tracker: DoowTracker, events: int = 1) -> Flask:
    app = Flask("unit")

    @app.get("/")
    def index() -> str:
        for _ in range(events):
            track_one(tracker)
        return "ok"

    return app


def stored(collector: Collector) -> int:
    count: int = collector.stats()["events_stored"]
    return count


# -- forms -----------------------------------------------------------------------------


def test_with_a_tracker(tracker: DoowTracker, vercel_collector: Collector) -> None:
    app = with_vercel(tracker)(flask_app(tracker))

    assert client(app).get("/").text == "ok"
    assert stored(vercel_collector) == 1


def test_with_a_tracker_and_options(tracker: DoowTracker, vercel_collector: Collector) -> None:
    decorator = with_vercel(
        tracker, flush_timeout=1.5, reserve=0.1, max_duration=30, idempotency="attempt"
    )
    app = decorator(flask_app(tracker))

    assert client(app).get("/").status_code == 200
    assert stored(vercel_collector) == 1


def test_as_a_method_bare_and_with_options(
    tracker: DoowTracker, vercel_collector: Collector
) -> None:
    bare = tracker.with_vercel(flask_app(tracker))
    configured = tracker.with_vercel(max_duration=60, reserve=0.5)(flask_app(tracker))

    client(bare).get("/")
    client(configured).get("/")
    assert stored(vercel_collector) == 2


@pytest.fixture
def fresh_default_tracker(
    vercel_collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setenv("DOOW_TRACK_API_KEY", TEST_KEY)
    monkeypatch.setenv("DOOW_TRACK_ENDPOINT", vercel_collector.url)
    monkeypatch.setenv("VERCEL", "1")
    monkeypatch.setattr(_invocation, "_default_tracker", None)
    yield
    built = _invocation._default_tracker
    if built is not None:
        built.shutdown(timeout=1.0)


@pytest.mark.usefixtures("fresh_default_tracker")
def test_bare_decorator_uses_the_default_tracker(vercel_collector: Collector) -> None:
    @with_vercel
    class handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            track_one(default_tracker())
            reply(self, b"ok")

    assert _invocation._default_tracker is not None  # built (and prepared) at decoration
    with serve(handler) as port:
        assert get(port, "/").read() == b"ok"
    assert stored(vercel_collector) == 1


# -- what comes back ---------------------------------------------------------------------


def test_a_handler_class_comes_back_as_a_subclass_of_it(tracker: DoowTracker) -> None:
    class handler(BaseHTTPRequestHandler):
        """Answers GET."""

        def do_GET(self) -> None:
            reply(self, b"ok")

        def helper(self) -> str:
            return "unchanged"

    wrapped = with_vercel(tracker)(handler)

    # What Vercel's runtime checks: the variable is a BaseHTTPRequestHandler subclass.
    assert isinstance(wrapped, type)
    assert issubclass(wrapped, BaseHTTPRequestHandler)
    assert issubclass(wrapped, handler)
    assert wrapped.__name__ == "handler"
    assert wrapped.__doc__ == "Answers GET."
    assert wrapped.__wrapped__ is handler  # type: ignore[attr-defined]
    assert wrapped.do_GET is not handler.do_GET
    assert wrapped.do_GET.__wrapped__ is handler.do_GET  # type: ignore[attr-defined]
    assert wrapped.helper is handler.helper


def test_apps_keep_the_interface_the_runtime_detects(tracker: DoowTracker) -> None:
    wsgi = with_vercel(tracker)(flask_app(tracker))

    async def asgi_app(scope: Scope, receive: Any, send: Any) -> None:
        return None

    asgi = with_vercel(tracker)(asgi_app)

    # The runtime's rule: async and (scope, receive, send) is ASGI; two parameters is WSGI.
    assert not inspect.iscoroutinefunction(wsgi.__call__)
    assert list(inspect.signature(wsgi).parameters) == ["environ", "start_response"]
    assert inspect.iscoroutinefunction(asgi.__call__)  # type: ignore[operator]
    assert list(inspect.signature(asgi).parameters) == ["scope", "receive", "send"]
    assert not hasattr(wsgi, "asgi")
    assert repr(asgi).startswith("with_vercel(<function")


def test_an_app_with_an_asgi_attribute_is_wrapped_as_asgi(
    tracker: DoowTracker, vercel_collector: Collector
) -> None:
    class Framework:
        """Like frameworks whose ASGI entry is ``app.asgi`` (the runtime tries it first)."""

        def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
            raise AssertionError("the WSGI side must not be used")

        async def asgi(self, scope: Scope, receive: Any, send: Any) -> None:
            track_one(tracker)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    wrapped = with_vercel(tracker)(Framework())

    # The wrapper hides `asgi`, or the runtime would call it and bypass the wrapper.
    assert not hasattr(wrapped, "asgi")
    messages = asyncio.run(call_asgi(wrapped))
    assert messages[-1]["body"] == b"ok"
    assert stored(vercel_collector) == 1


def test_attributes_are_forwarded_so_routes_can_be_added_after_wrapping(
    tracker: DoowTracker, vercel_collector: Collector
) -> None:
    app = with_vercel(tracker)(Flask("late"))

    @app.get("/late")
    def late() -> str:
        track_one(tracker)
        return "late"

    assert app.name == "late"
    assert client(app).get("/late").text == "late"
    assert stored(vercel_collector) == 1


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (42, "got int"),
        (dict, "got the class dict"),
        ("app", "got str"),
    ],
)
def test_what_cannot_be_wrapped_is_refused_at_decoration(
    tracker: DoowTracker, target: Any, message: str
) -> None:
    with pytest.raises(DoowConfigError, match=message):
        with_vercel(tracker)(target)


def test_wrapping_twice_and_a_class_without_methods_are_refused(tracker: DoowTracker) -> None:
    app = with_vercel(tracker)(flask_app(tracker))
    with pytest.raises(DoowConfigError, match="already wrapped"):
        with_vercel(tracker)(app)

    class handler(BaseHTTPRequestHandler):
        pass

    with pytest.raises(DoowConfigError, match="no do_"):
        with_vercel(tracker)(handler)


@pytest.mark.parametrize(
    "options",
    [
        {"max_duration": 0},
        {"max_duration": -1.0},
        {"max_duration": float("inf")},
        {"max_duration": True},
        {"flush_timeout": -1},
        {"idempotency": "request"},
    ],
)
def test_bad_options_are_refused_when_with_vercel_is_called(
    tracker: DoowTracker, options: dict[str, Any]
) -> None:
    with pytest.raises(DoowConfigError):
        with_vercel(tracker, **options)


def test_max_duration_comes_from_the_argument_then_the_variable_then_the_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert resolve_max_duration(30, {ENV_MAX_DURATION: "60"}) == 30.0
    assert resolve_max_duration(None, {ENV_MAX_DURATION: "60"}) == 60.0
    assert resolve_max_duration(None, {ENV_MAX_DURATION: " 12.5 "}) == 12.5
    assert resolve_max_duration(None, {}) == DEFAULT_MAX_DURATION_S == 10.0
    with caplog.at_level(logging.WARNING, logger="doow_serverless"):
        assert resolve_max_duration(None, {ENV_MAX_DURATION: "5m"}) == 10.0
        assert resolve_max_duration(None, {ENV_MAX_DURATION: "0"}) == 10.0
    assert [ENV_MAX_DURATION in record.getMessage() for record in caplog.records] == [True] * 2


# -- event ids -----------------------------------------------------------------------------


def test_the_same_vercel_id_twice_is_counted_once(
    tracker: DoowTracker, vercel_collector: Collector
) -> None:
    ids = client(with_vercel(tracker)(flask_app(tracker, events=2)))

    ids.get("/", headers={"x-vercel-id": "iad1::abcde-1700000000000-0123456789ab"})
    ids.get("/", headers={"x-vercel-id": "iad1::abcde-1700000000000-0123456789ab"})
    ids.get("/", headers={"x-vercel-id": "iad1::fghij-1700000000001-0123456789ab"})

    stats = vercel_collector.stats()
    assert stats["events_stored"] == 4  # two per id
    assert stats["duplicates"] == 2


def test_attempt_idempotency_and_a_missing_id_give_fresh_ids(
    tracker: DoowTracker, vercel_collector: Collector
) -> None:
    attempt = client(with_vercel(tracker, idempotency="attempt")(flask_app(tracker)))
    attempt.get("/", headers={"x-vercel-id": "same"})
    attempt.get("/", headers={"x-vercel-id": "same"})
    no_id = client(with_vercel(tracker)(flask_app(tracker)))
    no_id.get("/")
    no_id.get("/")

    assert stored(vercel_collector) == 4


def test_events_tracked_while_a_wsgi_body_streams_get_ids_from_the_request(
    tracker: DoowTracker, vercel_collector: Collector
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        for number in range(3):
            track_one(tracker, "chunks")
            yield b"chunk %d\n" % number

    streaming = Client(with_vercel(tracker)(app))
    for _ in range(2):
        assert streaming.get("/", headers={"x-vercel-id": "stream-1"}).data.count(b"chunk") == 3

    stats = vercel_collector.stats()
    assert stats["events_stored"] == 3
    assert stats["duplicates"] == 3


def test_concurrent_requests_keep_their_ids_apart(
    tracker: DoowTracker, vercel_collector: Collector
) -> None:
    @with_vercel(tracker)
    class handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            for _ in range(3):
                track_one(tracker)
                time.sleep(0.01)  # interleave with the other requests
            reply(self, b"ok")

    with serve(handler) as port:
        threads = [
            threading.Thread(target=lambda n=n: get(port, "/", {"x-vercel-id": f"r{n % 4}"}))
            for n in range(8)  # four ids, each sent twice, concurrently
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)

    stats = vercel_collector.stats()
    assert stats["events_stored"] == 12  # 4 ids x 3 events, whatever the interleaving
    assert stats["events_stored"] + stats["duplicates"] == 24


# -- the budget ------------------------------------------------------------------------


def test_without_a_runtime_deadline_max_duration_bounds_the_flush(
    tracker: DoowTracker, vercel_collector: Collector
) -> None:
    bounded = Client(
        with_vercel(tracker, max_duration=1.0, flush_timeout=5.0, reserve=0.25)(flask_app(tracker))
    )
    vercel_collector.set_faults({"then": {"action": "hang"}})

    started = time.monotonic()
    assert bounded.get("/").text == "ok"
    elapsed = time.monotonic() - started

    # The flush may run to max_duration - reserve = 0.75 s after the request started.
    # Tolerance: 0.2 s over it for a loaded machine, still short of max_duration itself.
    assert 0.6 <= elapsed < 0.95
    assert tracker.stats().pending == 1  # kept for the next flush
    vercel_collector.clear_faults()
    assert tracker.flush(2.0).delivered == 1


def test_a_request_that_used_its_time_flushes_nothing_and_keeps_its_events(
    tracker: DoowTracker, vercel_collector: Collector
) -> None:
    app = Flask("slow")

    @app.get("/")
    def slow() -> str:
        track_one(tracker)
        time.sleep(0.35)  # past max_duration - reserve
        return "late"

    slow_client = client(with_vercel(tracker, max_duration=0.5, reserve=0.25)(app))
    assert slow_client.get("/").text == "late"
    assert vercel_collector.stats()["requests"] == 0
    assert tracker.stats().pending == 1


# -- where the flush happens -----------------------------------------------------------


def test_a_raising_app_still_flushes_and_its_error_is_unchanged(
    tracker: DoowTracker, vercel_collector: Collector
) -> None:
    def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        track_one(tracker)
        raise LookupError("no such order")

    with pytest.raises(LookupError, match="no such order"):
        with_vercel(tracker)(wsgi)({"REQUEST_METHOD": "GET"}, lambda *args: None)

    async def asgi(scope: Scope, receive: Any, send: Any) -> None:
        track_one(tracker)
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        asyncio.run(call_asgi(with_vercel(tracker)(asgi)))
    assert stored(vercel_collector) == 2


def test_asgi_flushes_after_background_tasks_and_never_blocks_the_loop(
    tracker: DoowTracker, vercel_collector: Collector
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        track_one(tracker)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        track_one(tracker, "after_response")  # as a background task would, after the body

    wrapped = with_vercel(tracker)(app)
    vercel_collector.set_faults({"latency_ms": 500})

    async def scenario() -> tuple[int, float]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        started = time.monotonic()
        await call_asgi(wrapped)
        elapsed = time.monotonic() - started
        ticking.cancel()
        return ticks, elapsed

    ticks, elapsed = asyncio.run(scenario())

    assert elapsed >= 0.45  # the flush waited for the collector's 500 ms ...
    # ... and the loop kept running meanwhile: a blocked loop would tick about once.
    # Tolerance: 10 ticks of a possible ~50, for a loaded machine.
    assert ticks >= 10
    assert stored(vercel_collector) == 2


def test_lambda_mode_holds_the_wsgi_response_until_the_events_are_stored(
    tracker: DoowTracker, vercel_collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "vercel-function")
    vercel_collector.set_faults({"latency_ms": 200})
    wrapped = with_vercel(tracker)(flask_app(tracker))
    seen: list[int] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append(stored(vercel_collector))
        return lambda data: None

    body = wrapped({"REQUEST_METHOD": "GET", "PATH_INFO": "/", **wsgi_basics()}, start_response)

    assert b"".join(body) == b"ok"
    assert seen == [1]  # the server got even the status line only after the flush


def test_lambda_mode_holds_the_final_asgi_message_until_the_events_are_stored(
    tracker: DoowTracker, vercel_collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "vercel-function")
    vercel_collector.set_faults({"latency_ms": 200})

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        track_one(tracker)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"o", "more_body": True})
        await send({"type": "http.response.body", "body": b"k"})

    seen: list[tuple[str, int]] = []

    async def send(message: Message) -> None:
        seen.append((message["type"], stored(vercel_collector)))

    asyncio.run(call_asgi(with_vercel(tracker)(app), send=send))

    assert seen == [
        ("http.response.start", 0),  # streaming goes on: only the end is held ...
        ("http.response.body", 0),
        ("http.response.body", 1),  # ... until the flush is done
    ]


def test_lambda_mode_holds_a_handler_response_until_the_events_are_stored(
    tracker: DoowTracker, vercel_collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "vercel-function")
    vercel_collector.set_faults({"latency_ms": 200})

    @with_vercel(tracker)
    class handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            track_one(tracker)
            reply(self, b"ok")

    with serve(handler) as port:
        answer = get(port, "/")
        seen_at_answer = stored(vercel_collector)
        assert answer.read() == b"ok"

    assert seen_at_answer == 1


def test_elsewhere_a_handler_answers_before_its_flush(
    tracker: DoowTracker, vercel_collector: Collector
) -> None:
    vercel_collector.set_faults({"latency_ms": 300})

    @with_vercel(tracker)
    class handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            track_one(tracker)
            reply(self, b"ok")

    with serve(handler) as port:
        answer = get(port, "/")
        assert answer.read() == b"ok"
        seen_at_answer = stored(vercel_collector)
        deadline = time.monotonic() + 5
        while stored(vercel_collector) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)

    assert seen_at_answer == 0  # the answer did not wait for the collector's 300 ms
    assert stored(vercel_collector) == 1


# -- cold start --------------------------------------------------------------------------


def test_importing_the_module_imports_nothing_of_vercel_or_the_frameworks() -> None:
    code = (
        "import sys, doow_serverless\n"
        "before = set(sys.modules)\n"
        "import doow_serverless.vercel\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    added = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()

    # Only this package's own modules; no vercel, vercel_runtime, flask, starlette,
    # http.server, asyncio or inspect (each costs milliseconds of cold start).
    assert added
    assert all(name.startswith("doow_serverless") for name in added), added


# -- helpers -------------------------------------------------------------------------------


class Client(WerkzeugClient):
    """Werkzeug's WSGI test client, reading and closing each response as a server does."""

    def open(self, *args: Any, buffered: bool = True, **kwargs: Any) -> Any:
        return super().open(*args, buffered=buffered, **kwargs)


def client(app: Any) -> Client:
    """A client of the wrapped app (``app.test_client()`` would reach Flask's own, which
    calls the unwrapped app)."""
    return Client(app)


def reply(handler: BaseHTTPRequestHandler, body: bytes) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class serve:
    """A ThreadingHTTPServer on 127.0.0.1 for a handler class; yields its port."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        handler.log_message = lambda *args: None  # type: ignore[method-assign]
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> int:
        self.thread.start()
        return int(self.server.server_address[1])

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def get(port: int, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    return connection.getresponse()


def wsgi_basics() -> dict[str, Any]:
    return {
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": __import__("io").BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


async def call_asgi(app: Any, send: Any = None) -> list[Message]:
    """One GET / through an ASGI app; returns the messages it sent."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def record(message: Message) -> None:
        sent.append(message)
        if send is not None:
            await send(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
    }
    await app(scope, receive, record)
    return sent

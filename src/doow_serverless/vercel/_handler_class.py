"""``BaseHTTPRequestHandler`` subclasses: each ``do_*`` method is one request."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from .._core.errors import DoowConfigError
from ._runner import VERCEL_ID_HEADER, Runner, must_hold_response


def wrap_handler_class(cls: type[Any], runner: Runner) -> type[Any]:
    namespace: dict[str, Any] = {
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
        "__wrapped__": cls,
        "_doow_vercel": True,
    }
    methods = [name for name in dir(cls) if name.startswith("do_")]
    if not methods:
        raise DoowConfigError(f"with_vercel: {cls.__qualname__} defines no do_* method")
    for name in methods:
        method = getattr(cls, name)
        if callable(method):
            namespace[name] = _wrap_do_method(method, runner)
    metaclass: Callable[..., type[Any]] = type(cls)
    return metaclass(cls.__name__, (cls,), namespace)


def _wrap_do_method(method: Callable[..., Any], runner: Runner) -> Callable[..., Any]:
    @functools.wraps(method)
    def do(self: Any, *args: Any, **kwargs: Any) -> Any:
        invocation = runner.begin(_header(getattr(self, "headers", None), VERCEL_ID_HEADER))
        hold = must_hold_response()
        if hold:
            # Keep the whole response until the flush is done: the runtime's Lambda mode
            # buffers it anyway, and would answer Lambda once the body is read.
            held = _HeldWrites(self.wfile)
            self.wfile = held
        try:
            with invocation.entered():
                return method(self, *args, **kwargs)
        finally:
            if hold:
                try:
                    invocation.finish()
                finally:
                    self.wfile = held.release()
            else:
                runner.finish(invocation)

    return do


def _header(headers: object, name: str) -> str | None:
    get = getattr(headers, "get", None)
    if get is None:
        return None
    try:
        value = get(name)
    except Exception:
        return None
    return value if isinstance(value, str) else None


class _HeldWrites:
    """Stands in for a handler's ``wfile`` and sends what was written when released."""

    def __init__(self, wfile: Any) -> None:
        self._wfile = wfile
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def writelines(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Held until release: the response must not be complete before the flush."""

    def release(self) -> Any:
        if self._parts:
            self._wfile.write(b"".join(self._parts))
            self._parts.clear()
        self._wfile.flush()
        return self._wfile

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wfile, name)

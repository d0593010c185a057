"""The daemon's settings, read at start and again at each SIGHUP.

As for ``send``: a flag beats the config file, which beats the ``DOOW_TRACK_*`` variables.
The file is the official CLI's (either spelling of each key), plus the daemon's own keys;
the Node CLI's ``input`` (``{"mode": "tcp", "port": N}`` or ``{"mode": "file", "path":
P}``, or a list of them) and ``DOOW_TRACK_INPUT`` (``tcp:PORT``, ``file:PATH``) say which
line inputs to open besides the HTTP ingest.

Only what concerns sending (key, endpoint, attribution, flushAt, flushInterval, timeout,
debug, disabled) and the local token change on a reload; the rest (where it listens, the
spool) applies at the next start, and a reload that changes it says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .._core import constants as C
from .._core.config import (
    UNSET,
    TrackerConfig,
    is_loopback,
    is_printable_ascii,
    resolve_config,
    user_state_dir,
)
from .._core.env import EnvReader
from .._core.errors import DoowConfigError
from .._core.settings_file import milliseconds, parse_settings_file, tracker_settings

DAEMON_KEYS = frozenset(
    {
        "listen",
        "socket",
        "input",
        "spool_dir",
        "spool_max_bytes",
        "max_queue_size",
        "shutdown_timeout",
        "allow_remote",
        "token_file",
    }
)
MIN_TOKEN_LENGTH = 16
OFF = "off"


class SettingsError(ValueError):
    """Settings the daemon cannot run with; the message says which, never a secret."""


@dataclass(frozen=True)
class Flags:
    """What the command line gave (None or empty: not given)."""

    config: Path | None = None
    api_key: str | None = None
    endpoint: str | None = None
    listen: str | None = None
    socket: str | None = None
    lines_port: int | None = None
    follow: tuple[str, ...] = ()
    spool_dir: str | None = None
    spool_max_bytes: int | None = None
    max_queue_size: int | None = None
    grace: float | None = None
    allow_remote: bool = False
    token_file: str | None = None
    debug: bool = False

    def __repr__(self) -> str:
        return "Flags(...)"  # the key may be among them


class Settings(NamedTuple):
    tracker: TrackerConfig  # where and how to forward; its max_queue_size bounds memory
    listen: tuple[str, int] | None  # the HTTP ingest; None: off
    socket: str | None  # the HTTP ingest on a Unix socket too
    lines_port: int | None  # NDJSON lines over TCP, on 127.0.0.1
    follow: tuple[str, ...]  # NDJSON files followed
    spool_dir: str
    spool_max_bytes: int
    grace: float  # seconds a stop may take to forward what is held
    allow_remote: bool
    token: str | None  # the bearer token clients present; None: any (loopback only)

    def __repr__(self) -> str:
        return (
            f"Settings(tracker={self.tracker!r}, listen={self.listen!r}, socket={self.socket!r}, "
            f"lines_port={self.lines_port!r}, follow={self.follow!r}, "
            f"spool_dir={self.spool_dir!r}, spool_max_bytes={self.spool_max_bytes!r}, "
            f"grace={self.grace!r}, allow_remote={self.allow_remote!r}, "
            f"token={'<set>' if self.token else None})"
        )

    def changed_until_restart(self, new: Settings) -> list[str]:
        """The settings ``new`` changes that a reload cannot apply."""
        names = ("listen", "socket", "lines_port", "follow", "spool_dir", "spool_max_bytes")
        changed = [name for name in names if getattr(self, name) != getattr(new, name)]
        if self.allow_remote != new.allow_remote:
            changed.append("allow_remote")
        if self.tracker.max_queue_size != new.tracker.max_queue_size:
            changed.append("max_queue_size")
        return changed


def load(flags: Flags, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings, or :class:`SettingsError` saying what is wrong with them."""
    environ = os.environ if environ is None else environ
    try:
        file: dict[str, Any] = {}
        if flags.config is not None:
            text = flags.config.read_text(encoding="utf-8")
            file = parse_settings_file(text, str(flags.config), DAEMON_KEYS)
        return _resolve(flags, file, environ)
    except (OSError, ValueError, DoowConfigError) as exc:
        raise SettingsError(str(exc)) from None


def _resolve(flags: Flags, file: dict[str, Any], environ: Mapping[str, str]) -> Settings:
    env = EnvReader(environ)
    given = {"api_key": flags.api_key, "endpoint": flags.endpoint, "debug": flags.debug}
    tracker = resolve_config(
        environ,
        **tracker_settings(given, file),
        max_queue_size=(
            flags.max_queue_size
            if flags.max_queue_size is not None
            else file.get("max_queue_size", UNSET)
        ),
        spool=False,  # the daemon's spool is its own (see Intake)
        log_unsent=False,
        log_ahead=False,
    )
    if tracker.send_blocker:
        raise SettingsError(f"nothing could be forwarded: {tracker.send_blocker}")
    listen = _listen(flags.listen or file.get("listen") or f"{C.DAEMON_HOST}:{C.DAEMON_PORT}")
    socket_path = flags.socket or _text(file, "socket")
    lines_port, follow = _inputs(flags, file, env)
    allow_remote = flags.allow_remote or _flag(file, "allow_remote")
    token = _token(flags.token_file or _text(file, "token_file"), env)
    if listen is not None and not is_loopback_host(listen[0]):
        if not allow_remote:
            raise SettingsError(
                f"listening on {listen[0]}, which is not a loopback address, needs "
                "--allow-remote (allowRemote in the config file)"
            )
        if token is None:
            raise SettingsError(
                f"listening on {listen[0]} needs a local token that clients present as "
                f"their API key: --token-file FILE, tokenFile, or ${C.ENV_DAEMON_TOKEN}"
            )
    if listen is None and socket_path is None and lines_port is None and not follow:
        raise SettingsError("no input: give --listen, --socket, --lines-port or --follow")
    spool_dir = flags.spool_dir or _text(file, "spool_dir") or _default_spool_dir(env)
    grace = flags.grace
    if grace is None:
        grace = (
            milliseconds(file["shutdown_timeout"], "shutdown_timeout")
            if "shutdown_timeout" in file
            else C.DAEMON_GRACE_S
        )
    return Settings(
        tracker=tracker._replace(warnings=(*tracker.warnings, *env.warnings)),
        listen=listen,
        socket=socket_path,
        lines_port=lines_port,
        follow=follow,
        spool_dir=spool_dir,
        spool_max_bytes=_pick(
            flags.spool_max_bytes, file, "spool_max_bytes", C.DAEMON_SPOOL_MAX_BYTES
        ),
        grace=grace,
        allow_remote=allow_remote,
        token=token,
    )


def is_loopback_host(host: str) -> bool:
    """A loopback address, or ``localhost``; any other name counts as remote."""
    return host.lower() == "localhost" or is_loopback(host)


def _listen(value: object) -> tuple[str, int] | None:
    """``HOST:PORT``, ``[IPv6]:PORT``, ``PORT`` (on 127.0.0.1), or ``off``."""
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"listen must be HOST:PORT, PORT or off, got {value!r}")
    text = value.strip()
    if text.lower() == OFF:
        return None
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or C.DAEMON_HOST
    return host, _port(port, "listen")


def _port(value: object, name: str) -> int:
    try:
        port = int(str(value))
    except ValueError:
        port = -1
    if isinstance(value, bool) or not 0 <= port <= 65535:
        raise SettingsError(f"{name} must be a port number from 0 to 65535, got {value!r}")
    return port


def _inputs(
    flags: Flags, file: dict[str, Any], env: EnvReader
) -> tuple[int | None, tuple[str, ...]]:
    """The line inputs: from the flags when any is given, else the file, else the env."""
    if flags.lines_port is not None or flags.follow:
        given_port = None if flags.lines_port is None else _port(flags.lines_port, "--lines-port")
        return given_port, tuple(flags.follow)
    if "input" in file:
        given = file["input"]
        entries = given if isinstance(given, list) else [given]
    else:
        text = env.raw(C.ENV_INPUT)
        if text is None:
            return None, ()
        kind, _, rest = text.partition(":")
        entries = [{"mode": kind, "port" if kind == "tcp" else "path": rest}]
    port: int | None = None
    follow: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise SettingsError(f"input must be an object or a list of objects, got {entry!r}")
        mode = entry.get("mode")
        if mode == "tcp":
            port = _port(entry.get("port"), "input port")
        elif mode == "file":
            if not isinstance(entry.get("path"), str) or not entry["path"]:
                raise SettingsError("an input of mode 'file' needs a path")
            follow.append(entry["path"])
        elif mode == "stdin":
            raise SettingsError(
                "input mode 'stdin' is pipe mode: use `doow-serverless send` (the daemon "
                "takes HTTP, lines over TCP and followed files)"
            )
        else:
            raise SettingsError(f"input mode must be 'tcp' or 'file', got {mode!r}")
    return port, tuple(follow)


def _token(path: str | None, env: EnvReader) -> str | None:
    if path is not None:
        where = f"the token file {path}"
        try:
            token: str | None = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"cannot read {where}: {exc.strerror}") from None
    else:
        where = f"${C.ENV_DAEMON_TOKEN}"
        token = env.raw(C.ENV_DAEMON_TOKEN)
    if token is None:
        return None
    if len(token) < MIN_TOKEN_LENGTH or not is_printable_ascii(token):
        raise SettingsError(
            f"{where} must hold at least {MIN_TOKEN_LENGTH} visible ASCII characters "
            "(no spaces); for example `dk_local_` and 32 random letters and digits"
        )
    return token


def _default_spool_dir(env: EnvReader) -> str:
    state = user_state_dir(env)
    if state is None:
        raise SettingsError("no spool directory: give --spool-dir (no home directory to use)")
    return os.path.join(state, C.DAEMON_SPOOL_DIR_NAME)


def _pick(flag: int | None, file: dict[str, Any], name: str, default: int) -> int:
    value = flag if flag is not None else file.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingsError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value


def _text(file: dict[str, Any], name: str) -> str | None:
    value = file.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise SettingsError(f"config {name} must be a non-empty string, got {value!r}")
    return value


def _flag(file: dict[str, Any], name: str) -> bool:
    value = file.get(name, False)
    if not isinstance(value, bool):
        raise SettingsError(f"config {name} must be true or false, got {value!r}")
    return value

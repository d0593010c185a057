"""Settings of a tracker, resolved from explicit arguments, the environment and defaults.

Precedence: an explicit argument beats its ``DOOW_TRACK_*`` variable, which beats the
default. ``DOOW_TRACK_DISABLED=true`` disables the tracker whatever the arguments say
(a kill switch an operator can flip without a deploy). The official Node SDK lets the
environment win over arguments; here the code a user wrote wins.

An explicit argument that cannot be used raises :class:`DoowConfigError` at construction.
A malformed environment value never raises: it becomes a warning naming the variable,
and the default is used instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from enum import Enum
from typing import NamedTuple, TypeAlias, TypeVar

from . import constants as C
from .env import (
    FALSE_WORDS,
    EnvReader,
    count_check,
    parse_count,
    parse_milliseconds,
    seconds_check,
)
from .errors import DoowConfigError
from .events import Attribution, attribution_problem


class _Unset(Enum):
    UNSET = "UNSET"


UNSET = _Unset.UNSET
"""Tells "not given" apart from any value, ``None`` included."""

T = TypeVar("T")
Maybe: TypeAlias = T | _Unset


class TrackerConfig(NamedTuple):
    api_key: str | None
    endpoint: str
    enabled: bool
    debug: bool
    strict: bool
    flush_at: int
    flush_interval: float  # seconds; 0 turns periodic flushing off
    max_queue_size: int
    timeout: float  # seconds, per request
    retry_count: int
    compression: bool
    attribution: Attribution | None
    allow_http: bool
    # Where batches are written before they are sent; None: no spool.
    spool_dir: str | None
    spool_max_bytes: int
    # Whether undelivered events are written to stdout as log lines (on serverless
    # platforms by default, where stdout is the function's log).
    log_unsent: bool
    # Whether each batch's line is written before its first request (write-ahead), so a
    # kill at any moment, with /tmp lost, leaves every event in the log; else only what a
    # flush could not deliver gets a line. On serverless platforms by default.
    log_ahead: bool
    # Where events still undelivered at shutdown are left: the spool, else (outside
    # serverless platforms) a spool in the user's state directory; None: log lines.
    handover_dir: str | None
    # Why sending is impossible (no key, an endpoint refused): events are kept and the
    # reason is reported at each flush, instead of raising into user code at import.
    send_blocker: str | None
    warnings: tuple[str, ...]

    @property
    def ingest_url(self) -> str:
        return self.endpoint + C.INGEST_PATH

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={key_hint(self.api_key) if name == 'api_key' else value!r}"
            for name, value in zip(self._fields, self, strict=True)
        )
        return f"TrackerConfig({shown})"


def key_hint(key: str | None) -> str:
    """What may be shown of a key: its prefix and last four characters."""
    if not key:
        return "<none>"
    if not key.startswith(C.KEY_PREFIX) or len(key) <= len(C.KEY_PREFIX) + 8:
        return "…"  # too short, or not a Doow key: showing any of it would show too much
    return f"{C.KEY_PREFIX}…{key[-4:]}"


def redact(text: str, key: str | None) -> str:
    """``text`` with every occurrence of the key replaced by its hint."""
    if key and key in text:
        return text.replace(key, key_hint(key))
    return text


def endpoint_problem(url: str, allow_http: bool) -> str | None:
    from urllib.parse import urlsplit  # noqa: PLC0415 - once, at construction

    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http(s) URL with a host, such as https://api.doow.co"
    if parts.username or parts.password:
        return "must not carry credentials; the key goes in api_key"
    if parts.query or parts.fragment:
        return "must not have a query or fragment"
    if parts.scheme == "http" and not allow_http and not is_plain_http_host(host):
        return (
            "uses plain http:// for a non-local host; use https://, or allow it explicitly "
            f"with allow_http=True or {C.ENV_ALLOW_HTTP}=true"
        )
    return None


def is_plain_http_host(host: str) -> bool:
    """Loopback addresses and host.docker.internal, where plain HTTP is expected."""
    host = host.lower()
    if host in C.PLAIN_HTTP_HOSTS or host in ("::1", "0:0:0:0:0:0:0:1"):
        return True
    octets = host.split(".")
    return (
        len(octets) == 4
        and octets[0] == "127"
        and all(octet.isdigit() and int(octet) <= 255 for octet in octets)
    )


def resolve_config(
    environ: Mapping[str, str],
    *,
    api_key: Maybe[str | None] = UNSET,
    endpoint: Maybe[str] = UNSET,
    enabled: Maybe[bool] = UNSET,
    debug: Maybe[bool] = UNSET,
    strict: Maybe[bool] = UNSET,
    flush_at: Maybe[int] = UNSET,
    flush_interval: Maybe[float] = UNSET,
    max_queue_size: Maybe[int] = UNSET,
    timeout: Maybe[float] = UNSET,
    retry_count: Maybe[int] = UNSET,
    compression: Maybe[str | None] = UNSET,
    attribution: Maybe[Mapping[str, object] | None] = UNSET,
    allow_http: Maybe[bool] = UNSET,
    spool: Maybe[str | os.PathLike[str] | bool] = UNSET,
    spool_max_bytes: Maybe[int] = UNSET,
    log_unsent: Maybe[bool] = UNSET,
    log_ahead: Maybe[bool] = UNSET,
    serverless: bool = False,
) -> TrackerConfig:
    """``serverless``: the process runs on a serverless platform, where the spool is on
    by default (elsewhere it is off unless asked for)."""
    env = EnvReader(environ)

    allow_http_value = _explicit_bool("allow_http", allow_http)
    if allow_http_value is None:
        allow_http_value = env.boolean(C.ENV_ALLOW_HTTP, False)

    send_blockers: list[str] = []
    key = _resolve_key(api_key, env, send_blockers)
    url = _resolve_endpoint(endpoint, env, allow_http_value, send_blockers)

    enabled_value = _explicit_bool("enabled", enabled)
    if enabled_value is None:
        enabled_value = True
    if env.boolean(C.ENV_DISABLED, False):
        enabled_value = False

    spool_dir = _resolve_spool_dir(spool, env, serverless)
    debug_value = _explicit_bool("debug", debug)
    strict_value = _explicit_bool("strict", strict)

    return TrackerConfig(
        api_key=key,
        endpoint=url,
        enabled=enabled_value,
        debug=debug_value if debug_value is not None else env.boolean(C.ENV_DEBUG, False),
        strict=strict_value if strict_value is not None else env.boolean(C.ENV_STRICT, False),
        flush_at=_pick(
            "flush_at",
            flush_at,
            env,
            C.ENV_FLUSH_AT,
            parse=parse_count(1),
            default=C.DEFAULT_FLUSH_AT,
            explicit_check=count_check(1),
        ),
        flush_interval=_pick(
            "flush_interval",
            flush_interval,
            env,
            C.ENV_FLUSH_INTERVAL,
            parse=parse_milliseconds(allow_zero=True),
            default=C.DEFAULT_FLUSH_INTERVAL_S,
            explicit_check=seconds_check(allow_zero=True),
        ),
        max_queue_size=_pick(
            "max_queue_size",
            max_queue_size,
            env,
            C.ENV_MAX_QUEUE_SIZE,
            parse=parse_count(1),
            default=C.DEFAULT_MAX_QUEUE_SIZE,
            explicit_check=count_check(1),
        ),
        timeout=_pick(
            "timeout",
            timeout,
            env,
            C.ENV_TIMEOUT,
            parse=parse_milliseconds(allow_zero=False),
            default=C.DEFAULT_TIMEOUT_S,
            explicit_check=seconds_check(allow_zero=False),
        ),
        retry_count=_pick(
            "retry_count",
            retry_count,
            env,
            C.ENV_RETRY_COUNT,
            parse=parse_count(0),
            default=C.DEFAULT_RETRY_COUNT,
            explicit_check=count_check(0),
        ),
        compression=_resolve_compression(compression, env),
        attribution=_resolve_attribution(attribution, env),
        allow_http=allow_http_value,
        spool_dir=spool_dir,
        spool_max_bytes=_pick(
            "spool_max_bytes",
            spool_max_bytes,
            env,
            C.ENV_SPOOL_MAX_BYTES,
            parse=parse_count(1),
            default=C.DEFAULT_SPOOL_MAX_BYTES,
            explicit_check=count_check(1),
        ),
        log_unsent=_pick_bool("log_unsent", log_unsent, env, C.ENV_LOG_UNSENT, serverless),
        log_ahead=_pick_bool("log_ahead", log_ahead, env, C.ENV_LOG_AHEAD, serverless),
        handover_dir=spool_dir if spool_dir is not None or serverless else user_spool_dir(env),
        send_blocker="; ".join(send_blockers) or None,
        warnings=tuple(env.warnings),
    )


def _pick(
    argument: str,
    explicit: Maybe[T],
    env: EnvReader,
    variable: str,
    *,
    parse: Callable[[str], T],
    default: T,
    explicit_check: Callable[[T], str | None],
) -> T:
    if not isinstance(explicit, _Unset):
        problem = explicit_check(explicit)
        if problem is not None:
            raise DoowConfigError(f"{argument} {problem}")
        return explicit
    from_env = env.parsed(variable, parse)
    return default if from_env is None else from_env


def _pick_bool(
    argument: str, explicit: Maybe[bool], env: EnvReader, variable: str, default: bool
) -> bool:
    value = _explicit_bool(argument, explicit)
    return env.boolean(variable, default) if value is None else value


def _resolve_spool_dir(
    explicit: Maybe[str | os.PathLike[str] | bool], env: EnvReader, serverless: bool
) -> str | None:
    """True: the default directory; False: off; a path: that directory."""
    if not isinstance(explicit, _Unset):
        if explicit is True:
            return default_spool_dir(env)
        if explicit is False:
            return None
        if isinstance(explicit, (str, os.PathLike)) and os.fspath(explicit):
            return os.fspath(explicit)
        raise DoowConfigError(f"spool must be True, False or a directory, got {explicit!r}")
    value = env.raw(C.ENV_SPOOL_DIR)
    if value is None:
        return default_spool_dir(env) if serverless else None
    if value.lower() in FALSE_WORDS:
        return None
    return value


def default_spool_dir(env: EnvReader) -> str:
    """``$TMPDIR/doow-spool``: ``/tmp`` is the one writable place on Lambda and Vercel.

    The machine's temporary directory is the process's, whatever ``environ`` was given.
    """
    temporary = env.raw("TMPDIR") or os.environ.get("TMPDIR") or "/tmp"  # noqa: S108
    return os.path.join(temporary, C.SPOOL_DIR_NAME)


def user_spool_dir(env: EnvReader) -> str | None:
    """Where a program off serverless platforms leaves what it could not deliver, in the
    user's state directory (see :func:`user_state_dir`)."""
    state = user_state_dir(env)
    return None if state is None else os.path.join(state, C.SPOOL_DIR_NAME)


def user_state_dir(env: EnvReader) -> str | None:
    """``doow-serverless`` in the user's state directory (``$XDG_STATE_HOME``, else
    ``~/.local/state``; on macOS ``~/Library/Application Support``), or None when there
    is no home to find."""
    import sys  # noqa: PLC0415 - once, at construction

    base = env.raw("XDG_STATE_HOME") or os.environ.get("XDG_STATE_HOME")
    if not base:
        home = env.raw("HOME") or os.environ.get("HOME") or ""
        if not home:
            return None
        parts = (
            ("Library", "Application Support") if sys.platform == "darwin" else (".local", "state")
        )
        base = os.path.join(home, *parts)
    return os.path.join(base, "doow-serverless")


def _explicit_bool(argument: str, value: Maybe[bool]) -> bool | None:
    if isinstance(value, _Unset):
        return None
    if not isinstance(value, bool):
        raise DoowConfigError(f"{argument} must be True or False, got {type(value).__name__}")
    return value


def _resolve_key(explicit: Maybe[str | None], env: EnvReader, blockers: list[str]) -> str | None:
    if not isinstance(explicit, _Unset) and explicit is not None:
        if isinstance(explicit, str):
            explicit = explicit.strip()
        if not isinstance(explicit, str) or not explicit.startswith(C.KEY_PREFIX):
            raise DoowConfigError(
                f"api_key must be a Doow SDK key starting with {C.KEY_PREFIX!r} "
                f"(got a {type(explicit).__name__} that does not)"
            )
        if not is_printable_ascii(explicit):
            raise DoowConfigError(
                "api_key holds a space, control or non-ASCII character; "
                "copy the key again from Doow"
            )
        return explicit
    key = env.raw(C.ENV_API_KEY)
    if key is None:
        blockers.append(f"no API key: pass api_key or set {C.ENV_API_KEY}")
        return None
    if not key.startswith(C.KEY_PREFIX) or not is_printable_ascii(key):
        env.warnings.append(
            f"{C.ENV_API_KEY} is not a Doow SDK key (it must start with {C.KEY_PREFIX!r} and "
            "hold no space, control or non-ASCII character); events are kept, not sent"
        )
        blockers.append(f"{C.ENV_API_KEY} is not a Doow SDK key")
        return None
    return key


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback IP address (IPv4, IPv6, or IPv4 mapped in IPv6)."""
    import ipaddress  # noqa: PLC0415 - servers only

    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def is_printable_ascii(text: str) -> bool:
    """What an HTTP header value may safely carry: visible ASCII, no spaces."""
    return text.isascii() and text.isprintable() and " " not in text


def _resolve_endpoint(
    explicit: Maybe[str], env: EnvReader, allow_http: bool, blockers: list[str]
) -> str:
    if not isinstance(explicit, _Unset):
        if not isinstance(explicit, str):
            raise DoowConfigError(f"endpoint must be a URL string, got {type(explicit).__name__}")
        problem = endpoint_problem(explicit, allow_http)
        if problem is not None:
            raise DoowConfigError(f"endpoint {problem}")
        return explicit.rstrip("/")
    url = env.raw(C.ENV_ENDPOINT)
    if url is None:
        return C.DEFAULT_ENDPOINT
    problem = endpoint_problem(url, allow_http)
    if problem is not None:
        # Falling back to the default would send to a place the operator did not name.
        env.warnings.append(f"{C.ENV_ENDPOINT} {problem}; events are kept, not sent")
        blockers.append(f"{C.ENV_ENDPOINT} {problem}")
        return url.rstrip("/")
    return url.rstrip("/")


def _resolve_compression(explicit: Maybe[str | None], env: EnvReader) -> bool:
    choices = {"gzip": True, "none": False}
    if not isinstance(explicit, _Unset):
        if explicit is None:
            return False
        if explicit not in choices:
            raise DoowConfigError(f"compression must be 'gzip' or None, got {explicit!r}")
        return choices[explicit]
    value = env.raw(C.ENV_COMPRESSION)
    if value is None:
        return True
    if value.lower() not in choices:
        env.warn(C.ENV_COMPRESSION, f"must be gzip or none, got {value[:40]!r}")
        return True
    return choices[value.lower()]


def _resolve_attribution(
    explicit: Maybe[Mapping[str, object] | None], env: EnvReader
) -> Attribution | None:
    if not isinstance(explicit, _Unset):
        if explicit is None:
            return None
        as_dict = dict(explicit) if isinstance(explicit, Mapping) else explicit
        problem = attribution_problem(as_dict)
        if problem is not None:
            raise DoowConfigError(f"attribution {problem}")
        return as_dict or None  # type: ignore[return-value]
    text = env.raw(C.ENV_ATTRIBUTION)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        env.warn(C.ENV_ATTRIBUTION, "is not valid JSON")
        return None
    problem = attribution_problem(value)
    if problem is not None:
        env.warn(C.ENV_ATTRIBUTION, problem)
        return None
    attribution: Attribution = value
    return attribution or None

"""DoowTracker: validate and queue usage events, and deliver them within a deadline."""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, ParamSpec, Protocol, TypeVar, overload

from .._core import constants as C
from .._core.config import UNSET, Maybe, TrackerConfig, key_hint, redact, resolve_config
from .._core.constants import Delivery
from .._core.deadline import Deadline
from .._core.errors import (
    DoowConfigError,
    DoowDeliveryError,
    DoowError,
    DoowQueueFullError,
    DoowValidationError,
)
from .._core.events import (
    MAX_QUANTITY,
    QueuedEvent,
    attribution_problem,
    check,
    kind_problem,
    name_problem,
    optional_text_problem,
    parse_timestamp,
    quantity_problem,
)
from .._core.platform import detect_platform
from .._core.scope import Idempotency, current_invocation, current_scope, process_scope
from .._core.wire import IDEMPOTENCY_SEED_PREFIX, JSON_UTF8, canonical_uuid, prepare_ids
from .._delivery.outbox import CLOSED, FULL, Outbox
from .._delivery.transport import HttpTransport, Transport
from .sender import FlushResult, Sender


class Decorator(Protocol):
    """A decorator that keeps the signature of what it wraps."""

    def __call__(self, function: Callable[P, R], /) -> Callable[P, R]: ...


# How to find a platform wrapper by name (``with_lambda``, ...): handed over by the
# package's public face, which loads the platform modules on first use.
_find_wrapper: Callable[[str], Callable[..., Any]] | None = None


def use_platform_wrappers(find: Callable[[str], Callable[..., Any]]) -> None:
    """Tell trackers how to find a platform wrapper by name (called by ``doow_serverless``)."""
    global _find_wrapper  # noqa: PLW0603 - set once, at import of the package
    _find_wrapper = find


def _bound(name: str, tracker: DoowTracker, target: Any, options: dict[str, Any]) -> Any:
    if _find_wrapper is None:  # pragma: no cover - the package's __init__ sets it
        raise DoowConfigError(f"{name} is not available: import doow_serverless first")
    decorator = _find_wrapper(name)(tracker, **options)
    return decorator if target is None else decorator(target)


P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

logger = logging.getLogger(C.LOGGER_NAME)

ErrorHandler = Callable[[DoowError], object]

# How long a flush started by the background thread may take.
BACKGROUND_FLUSH_TIMEOUT_S = 30.0
# In a long-running process a full queue makes track() wait this long for the background
# sender to free space before an event is dropped: usage events are money, and slowing a
# burst down is better than losing part of it. On serverless platforms nothing sends
# during the invocation, so waiting could not help and track() drops (and counts) at once.
FULL_QUEUE_WAIT_S = 5.0
# What a flush leaves, before an invocation's hard deadline, for the runtime to post the
# response: spooling, and waiting for the deadline watch to finish keeping, stop there.
# (Log lines for events that have none are written whatever the time: the last resort.)
RESPONSE_MARGIN_S = 0.02

_INF = math.inf
_USAGE = C.KIND_USAGE
_now = time.time
_MAX_NAME = C.MAX_NAME_LENGTH
_MAX_QUANTITY = MAX_QUANTITY
_MAX_KEYS = C.MAX_ATTRIBUTION_KEYS
# Builds the NamedTuple without the extra Python frame of its generated __new__.
_new_event: Callable[[type[QueuedEvent], tuple[Any, ...]], QueuedEvent] = tuple.__new__


class TrackerStats(NamedTuple):
    """Where every event given to ``track()`` has gone so far.

    ``tracked + recovered == delivered + rejected + dropped + persisted + pending``.
    """

    tracked: int  # passed validation
    delivered: int  # acknowledged by the server
    rejected: int  # refused for good by the server (reported with the reason)
    dropped: int  # lost to an explicit limit: a full queue, or nowhere to persist (reported)
    invalid: int  # failed validation (reported; not tracked)
    pending: int  # still queued here: sent by the next flush
    persisted: int = 0  # left at shutdown in the spool or a log line, for replay
    recovered: int = 0  # found in the spool of a process that died here before


class DoowTracker:
    """Buffers usage events and sends them to Doow in batches.

    ``track()`` only validates and queues. Sending happens in ``flush(timeout)``, which the
    serverless wrappers call with a budget taken from the invocation's remaining time, and
    in long-running processes also from one background thread, started on the first
    ``track()``. Nothing is sent, and no thread started, by the constructor.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        endpoint: Maybe[str] = UNSET,
        enabled: Maybe[bool] = UNSET,
        attribution: Maybe[Mapping[str, object] | None] = UNSET,
        debug: Maybe[bool] = UNSET,
        strict: Maybe[bool] = UNSET,
        flush_at: Maybe[int] = UNSET,
        flush_interval: Maybe[float] = UNSET,
        max_queue_size: Maybe[int] = UNSET,
        timeout: Maybe[float] = UNSET,
        retry_count: Maybe[int] = UNSET,
        compression: Maybe[str | None] = UNSET,
        allow_http: Maybe[bool] = UNSET,
        spool: Maybe[str | os.PathLike[str] | bool] = UNSET,
        spool_max_bytes: Maybe[int] = UNSET,
        log_unsent: Maybe[bool] = UNSET,
        log_ahead: Maybe[bool] = UNSET,
        on_error: ErrorHandler | None = None,
        transport: Transport | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        environ = os.environ if environ is None else environ
        self._platform = detect_platform(environ)
        self._config: TrackerConfig = resolve_config(
            environ,
            api_key=UNSET if api_key is None else api_key,
            endpoint=endpoint,
            enabled=enabled,
            attribution=attribution,
            debug=debug,
            strict=strict,
            flush_at=flush_at,
            flush_interval=flush_interval,
            max_queue_size=max_queue_size,
            timeout=timeout,
            retry_count=retry_count,
            compression=compression,
            allow_http=allow_http,
            spool=spool,
            spool_max_bytes=spool_max_bytes,
            log_unsent=log_unsent,
            log_ahead=log_ahead,
            serverless=self._platform is not None,
        )
        if on_error is not None and not callable(on_error):
            raise DoowConfigError(f"on_error must be callable, got {type(on_error).__name__}")
        self._on_error = on_error
        self._transport: Transport = (
            transport if transport is not None else HttpTransport(environ=environ)
        )
        self._outbox = Outbox(self._config.max_queue_size)
        self._enabled = self._config.enabled
        self._strict = self._config.strict
        self._flush_at = self._config.flush_at
        self._closed = False
        self._lock = threading.Lock()
        self._worker: Any = None
        self._start_worker = self._platform is None
        self._counts = {"dropped": 0, "invalid": 0}
        self._dropped_unreported = 0
        self._background_stalled = False
        self._sender = Sender(
            self._config if self._enabled else self._config._replace(spool_dir=None),
            self._transport,
            self._outbox,
            report=self._report,
            # The process may be frozen, then killed, after any flush: what a flush leaves
            # unsent is made durable before it returns.
            serverless=self._platform is not None,
        )

        if self._config.debug:
            _enable_debug_logging()
        for warning in self._config.warnings:
            logger.warning("doow-serverless: %s", warning)
        if self._enabled and self._config.send_blocker:
            logger.warning(
                "doow-serverless: events will be kept but not sent: %s", self._config.send_blocker
            )
        _live_trackers.add(self)

    # ------------------------------------------------------------------------------
    # Recording

    def track(
        self,
        metric: str,
        quantity: int | float,
        license_id: str,
        *,
        unit: str | None = None,
        attribution: Mapping[str, str | int | float | bool] | None = None,
        metadata: Mapping[str, Any] | None = None,
        kind: str = C.KIND_USAGE,
        timestamp: Any = None,
        event_id: str | None = None,
        idempotency_key: str | None = None,
        source_system: str | None = None,
    ) -> None:
        """Validate one usage event and queue it. Never blocks on the network.

        An invalid event is reported through ``on_error`` and the log, and dropped; with
        ``strict=True`` a :class:`DoowValidationError` is raised here instead.
        """
        if not self._enabled:
            return
        try:
            # The common case is checked inline (this is the hot path); the rule functions
            # run only to explain a failure, or for the less common fields.
            if (
                type(metric) is not str
                or not metric
                or len(metric) > _MAX_NAME
                or metric.isspace()
                or not metric.isascii()
            ):
                check("metric", name_problem(metric))
            if (
                type(license_id) is not str
                or not license_id
                or len(license_id) > _MAX_NAME
                or license_id.isspace()
                or not license_id.isascii()
            ):
                check("license_id", name_problem(license_id))
            if kind is not _USAGE:
                check("kind", kind_problem(kind))
            quantity_type = type(quantity)
            if (
                (quantity_type is not int and quantity_type is not float)
                or not 0 < quantity < _INF
                or kind != _USAGE
                or quantity > _MAX_QUANTITY
            ):
                check("quantity", quantity_problem(quantity, kind))
            if unit is not None and (
                type(unit) is not str or len(unit) > _MAX_NAME or not unit.isascii()
            ):
                check("unit", optional_text_problem(unit))
            if source_system is not None:
                check("source_system", optional_text_problem(source_system))
            if attribution is not None:
                # A private copy: the caller may change its dict after track() returns.
                if type(attribution) is dict:
                    attribution = attribution.copy()
                elif isinstance(attribution, Mapping):
                    attribution = dict(attribution)
                problem = attribution_problem(attribution)
                if problem is not None:
                    raise DoowValidationError("attribution", problem)
                defaults = self._config.attribution
                if defaults and len(defaults) + len(attribution) > _MAX_KEYS:
                    merged = len({**defaults, **attribution})
                    if merged > _MAX_KEYS:
                        raise DoowValidationError(
                            "attribution",
                            f"merged with the tracker's attribution it has {merged} keys; "
                            f"the limit is {_MAX_KEYS}",
                        )
            if metadata is not None:
                metadata = _copy_metadata(metadata)
            occurred_at = _now() if timestamp is None else parse_timestamp(timestamp)
            id_seed = None
            if event_id is not None:
                event_id = _checked_event_id(event_id)
            elif idempotency_key is not None:
                if type(idempotency_key) is not str or not idempotency_key:
                    raise DoowValidationError(
                        "idempotency_key", "must be a non-empty string when given"
                    )
                id_seed = IDEMPOTENCY_SEED_PREFIX + idempotency_key
            else:
                scope = current_scope.get() or process_scope.current
                if scope is not None:
                    id_seed = scope.next_seed()
        except DoowValidationError as error:
            self._count("invalid")
            if self._strict:
                raise
            self._report(error)
            return

        event = _new_event(
            QueuedEvent,
            (
                metric,
                quantity,
                license_id,
                unit,
                kind,
                occurred_at,
                attribution or None,
                metadata,
                event_id,
                id_seed,
                source_system,
            ),
        )
        if self._start_worker:
            self._ensure_worker()
        queued = self._outbox.put(event)
        if queued == FULL and self._worker is not None and self._sender_healthy():
            self._worker.wake()
            queued = self._outbox.put_waiting(event, FULL_QUEUE_WAIT_S)
        if queued < 0:
            self._drop(
                1,
                "the tracker is shut down"
                if queued == CLOSED
                else f"the queue holds max_queue_size={self._config.max_queue_size} events",
            )
            return
        if queued >= self._flush_at and self._worker is not None:
            self._worker.wake()

    # ------------------------------------------------------------------------------
    # Sending

    def flush(self, timeout: float | None = None) -> FlushResult:
        """Send what is queued, and wait for batches in flight, for at most ``timeout`` seconds.

        Every request timeout, backoff and Retry-After wait is clipped to the deadline.
        Whatever could not be sent in time stays queued, in order, with the same ids.
        """
        budget = self._config.timeout if timeout is None else timeout
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or math.isnan(budget):
            raise DoowConfigError(f"flush timeout must be a number of seconds, got {budget!r}")
        deadline = Deadline(_seconds(budget))
        if not self._enabled:
            return FlushResult(0, 0, 0, 0.0)
        self._report_dropped()
        return self._sender.flush(deadline, keep_until=_keep_until())

    def shutdown(self, timeout: float = C.DEFAULT_SHUTDOWN_TIMEOUT_S) -> FlushResult:
        """Flush, wait for batches in flight, then close the connection. Safe to call twice.

        What could not be delivered is kept for replay: in the spool when there is one,
        else as log lines on stdout (see ``doow-serverless replay``).
        """
        return self._shutdown(timeout, hand_over=True)

    def _shutdown(self, timeout: float, *, hand_over: bool) -> FlushResult:
        with self._lock:
            if self._closed:
                return FlushResult(0, 0, len(self._outbox), 0.0)
            self._closed = True
        self._outbox.close()
        deadline = Deadline(_seconds(timeout))
        worker = self._worker
        if worker is not None:
            worker.stop(0)
        result = self.flush(deadline.remaining())
        if worker is not None:
            worker.stop(deadline.remaining())
        self._sender.stop_waiting()
        _live_trackers.discard(self)
        if result.pending and self._enabled and hand_over:
            self._hand_over_unsent(result)
        self._sender.close()
        return result

    def prepare(self, *, connect: bool = True) -> None:
        """Adopt what dead processes left in the spool, and build the HTTP connection pool
        now rather than at the first flush (``connect=False``: the pool is left to the
        first flush).

        Platform wrappers call this while the function initialises, so a first response
        that waits for a flush does not also wait for importing the HTTP library and
        loading certificates. Where the flush runs after the response, they pass
        ``connect=False``: the first response does not need the pool. What settling event
        ids needs is loaded here too, so a handler's events get their log line as soon as
        it returns.
        """
        if self._enabled:
            prepare_ids()
            self._sender.open()
        prepare = getattr(self._transport, "prepare", None)
        if connect and self._enabled and not self._config.send_blocker and prepare is not None:
            try:
                prepare(self._config.ingest_url)
            except Exception:
                logger.exception("doow-serverless: could not prepare the HTTP client")

    # The platform spellings of the wrappers (``@tracker.with_lambda``, as the Node SDK's
    # ``meter.withLambda``). The core imports no platform: the package's public face hands
    # over how to find a wrapper by name (see ``use_platform_wrappers``).

    @overload
    def with_lambda(self, handler: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    def with_lambda(
        self,
        handler: None = None,
        /,
        *,
        flush_timeout: float | None = None,
        reserve: float | None = None,
        idempotency: Idempotency = "invocation",
        delivery: Delivery | None = None,
    ) -> Decorator: ...

    def with_lambda(self, handler: Any = None, /, **options: Any) -> Any:
        """``doow_serverless.with_lambda`` bound to this tracker (``@tracker.with_lambda``)."""
        return _bound("with_lambda", self, handler, options)

    @overload
    def with_vercel(self, target: T, /) -> T: ...

    @overload
    def with_vercel(
        self,
        target: None = None,
        /,
        *,
        flush_timeout: float | None = None,
        reserve: float | None = None,
        max_duration: float | None = None,
        idempotency: Idempotency = "invocation",
        delivery: Delivery | None = None,
    ) -> Callable[[T], T]: ...

    def with_vercel(self, target: Any = None, /, **options: Any) -> Any:
        """``doow_serverless.with_vercel`` bound to this tracker (``@tracker.with_vercel``)."""
        return _bound("with_vercel", self, target, options)

    @overload
    def with_azure_function(self, function: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    def with_azure_function(
        self,
        function: None = None,
        /,
        *,
        flush_timeout: float | None = None,
        reserve: float | None = None,
        idempotency: Idempotency = "invocation",
        delivery: Delivery | None = None,
    ) -> Decorator: ...

    def with_azure_function(self, function: Any = None, /, **options: Any) -> Any:
        """``doow_serverless.with_azure_function`` bound to this tracker."""
        return _bound("with_azure_function", self, function, options)

    def stats(self) -> TrackerStats:
        """Always consistent: ``tracked + recovered == delivered + rejected + dropped +
        persisted + pending``."""
        with self._lock:
            queued = self._outbox.counts()
            dropped, invalid = self._counts["dropped"], self._counts["invalid"]
        return TrackerStats(
            tracked=queued.accepted + dropped,
            delivered=queued.delivered,
            rejected=queued.rejected,
            dropped=dropped + queued.abandoned,
            invalid=invalid,
            pending=queued.pending,
            persisted=queued.persisted,
            recovered=queued.recovered,
        )

    @property
    def config(self) -> TrackerConfig:
        return self._config

    @property
    def platform(self) -> str | None:
        """The serverless platform detected from the environment, if any."""
        return self._platform

    def __repr__(self) -> str:
        return (
            f"DoowTracker(endpoint={self._config.endpoint!r}, "
            f"key={key_hint(self._config.api_key)!r}, enabled={self._enabled}, "
            f"pending={len(self._outbox)})"
        )

    def __enter__(self) -> DoowTracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # ------------------------------------------------------------------------------
    # Keeping events past the process (see _durability)

    def keep(self) -> None:
        """Make what is queued durable as a flush does before it sends, sending nothing.

        On a serverless platform: a log line for every batch that has none (unless
        ``log_ahead`` is off), then the spool. The platform wrappers call this before a
        response goes back when the sending happens after it.
        """
        if self._enabled:
            self._sender.keep(_keep_until())

    def deliver_by_log(self) -> int:
        """Deliver what is queued by log lines alone, sending nothing: each batch is
        written as a line on stdout and given up here (``stats().persisted``); a forwarder
        reading the platform's logs delivers it. The events given up."""
        if not self._enabled:
            return 0
        self._report_dropped()
        return self._sender.deliver_by_log()

    def persist(self, reason: str = "kept on request") -> None:
        """Write everything queued (and in flight in other threads) where it survives this
        process, sending nothing: the spool, and on serverless platforms a log line.

        The deadline watch calls this for a handler still running near its deadline; call
        it yourself before something that may kill the process. The events stay queued:
        the next flush sends them, with the same ids.
        """
        if self._enabled:
            self._sender.open()
            self._sender.persist(reason)

    def _hand_over_unsent(self, result: FlushResult) -> None:
        """At shutdown: leave what was not delivered in the spool, else in log lines."""
        why = str(result.error or "not delivered before shutdown")
        kept, lost = self._sender.hand_over(why)
        config = self._config
        if kept:
            where = config.handover_dir if config.handover_dir is not None else "log lines"
            self._report(
                DoowDeliveryError(
                    f"{kept} event(s) were not delivered before shutdown; they are kept in "
                    f"{where}: send them with `doow-serverless replay "
                    + (f"--spool {where}`" if config.handover_dir else "--log FILE`"),
                    event_count=kept,
                )
            )
        if lost:
            self._report(
                DoowDeliveryError(
                    f"{lost} event(s) were not delivered before shutdown and could not be "
                    "kept: the spool is off or full, and log lines are off or failed",
                    event_count=lost,
                ),
                level=logging.ERROR,
            )

    # ------------------------------------------------------------------------------
    # Internals

    def _drop(self, count: int, why: str) -> None:
        with self._lock:
            self._counts["dropped"] += count
            first = self._dropped_unreported == 0
            self._dropped_unreported += count
        if first:
            self._report(DoowQueueFullError(f"event dropped: {why}", dropped=count))

    def _report_dropped(self) -> None:
        with self._lock:
            # The first drop was reported when it happened; the rest are summed here.
            later = self._dropped_unreported - 1
            self._dropped_unreported = 0
        if later > 0:
            self._report(
                DoowQueueFullError(f"{later} more events were dropped since", dropped=later)
            )

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def _report(self, error: DoowError, level: int = logging.WARNING) -> None:
        text = str(error)
        safe = redact(text, self._config.api_key)
        if safe != text:  # e.g. a server echoing the key: on_error must not see it either
            error.args = (safe,)
        logger.log(level, "doow-serverless: %s", safe)
        if self._on_error is None:
            return
        try:
            self._on_error(error)
        except Exception:
            logger.exception("doow-serverless: the on_error callback raised")

    def _forget_parent_state(self) -> None:
        self._lock = threading.Lock()
        self._outbox = Outbox(self._config.max_queue_size)
        self._counts = {"dropped": 0, "invalid": 0}
        self._dropped_unreported = 0
        self._worker = None
        self._start_worker = self._platform is None and not self._closed
        self._sender.forget_after_fork(self._outbox)

    def _sender_healthy(self) -> bool:
        """Whether waiting for the background sender to free space can help."""
        return not (self._background_stalled or self._sender.stopped or self._config.send_blocker)

    def _background_flush(self) -> None:
        result = self.flush(BACKGROUND_FLUSH_TIMEOUT_S)
        self._background_stalled = result.error is not None and result.delivered == 0

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is not None or self._closed:
                self._start_worker = False
                return
            from .worker import PeriodicFlusher  # noqa: PLC0415 - only long-running processes

            self._worker = PeriodicFlusher(self._background_flush, self._config.flush_interval)
            self._worker.start()
            self._start_worker = False


def _seconds(value: float) -> float:
    """A budget as a wait may take it: not negative, not beyond what threads can wait."""
    return min(max(float(value), 0.0), threading.TIMEOUT_MAX)


def _keep_until() -> Deadline | None:
    """How long keeping what a flush cannot send may take: up to shortly before the
    current invocation's hard deadline (the response must still go back); unbounded
    outside an invocation whose deadline is known."""
    invocation = current_invocation()
    if invocation is None or invocation.deadline is None:
        return None
    return Deadline(invocation.deadline - RESPONSE_MARGIN_S - time.monotonic())


def _checked_event_id(value: object) -> str:
    if type(value) is not str and type(value).__name__ == "UUID":
        value = str(value)
    if (canonical := canonical_uuid(value)) is None:
        raise DoowValidationError("event_id", f"must be a UUID string, got {type(value).__name__}")
    return canonical


def _copy_metadata(value: object) -> dict[str, Any]:
    """A JSON-safe private copy (so later changes by the caller cannot alter the event)."""
    if not isinstance(value, Mapping):
        raise DoowValidationError(
            "metadata", f"must be a dict of JSON values, got {type(value).__name__}"
        )
    try:
        encoded = JSON_UTF8.encode(dict(value)).encode("utf-8")
    except RecursionError:
        raise DoowValidationError("metadata", "is nested too deeply to send") from None
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise DoowValidationError("metadata", f"must be JSON-serializable: {exc}") from None
    if len(encoded) > C.MAX_METADATA_BYTES:
        raise DoowValidationError(
            "metadata", f"must be at most {C.MAX_METADATA_BYTES} bytes as JSON, got {len(encoded)}"
        )
    copied: dict[str, Any] = json.loads(encoded)
    return copied


def _enable_debug_logging() -> None:
    logger.setLevel(logging.DEBUG)
    # Where the application (or the platform, as on Lambda) already logs, use its handlers;
    # adding one here too would print every line twice.
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[doow-serverless] %(levelname)s %(message)s"))
        logger.addHandler(handler)


_live_trackers: weakref.WeakSet[DoowTracker] = weakref.WeakSet()


def _forget_parent_state() -> None:
    """In a child made by fork(): the queue, threads and sockets are the parent's.

    Events queued before the fork belong to the parent, which sends them; were the child
    to send its copy too, events without a given id would be billed twice.
    """
    for tracker in list(_live_trackers):
        tracker._forget_parent_state()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_parent_state)


@atexit.register
def _shutdown_live_trackers() -> None:
    for tracker in list(_live_trackers):
        try:
            tracker.shutdown()
        except Exception:
            logger.exception("doow-serverless: shutdown at exit failed")

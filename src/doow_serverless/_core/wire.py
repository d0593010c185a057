"""The ingest wire format, in one place for both the client and the local collector.

Client side: settle an event's id, encode events one by one (so a batch's size is known
exactly before it is built), join them into a batch body, read a 207 answer.
Server side (the collector's and the daemon's): decode a request body (gzip capped), check
a batch and each event in it, the body of an error answer.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any, NamedTuple

from .constants import (
    DEFAULT_SOURCE_SYSTEM,
    FAST_JSON_MIN_EVENTS,
    GZIP_LEVEL,
    KIND_USAGE,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_SERVER_TEXT,
    SDK_VERSION,
)
from .errors import Rejection
from .events import (
    Attribution,
    QueuedEvent,
    attribution_problem,
    format_timestamp,
    kind_problem,
    name_problem,
    optional_text_problem,
    quantity_problem,
)

# Deterministic ids (idempotency keys, invocation ids) are UUIDv5 in this namespace, so the
# same key always names the same event, in any process, on any machine.
EVENT_ID_NAMESPACE = "6f1c1d0e-4a8b-5c7e-9d3f-2b6a8e4c1f70"
# The seed of an event given an idempotency key is this prefix and the key.
IDEMPOTENCY_SEED_PREFIX = "key:"

# The one compact encoder of the package (and its escaped twin, for streams that cannot
# carry UTF-8): request bodies, log lines and private copies of metadata all use it.
JSON_UTF8 = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
JSON_ASCII = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# The variant nibble of an RFC 4122 UUID is 8, 9, a or b: two bits of the hash or of
# chance under "10".
_VARIANT_NIBBLE = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
_NAMESPACE_BYTES = bytes.fromhex(EVENT_ID_NAMESPACE.replace("-", ""))


def event_id_from_seed(seed: str) -> str:
    """``str(uuid.uuid5(UUID(EVENT_ID_NAMESPACE), seed))``, a quarter of the cost, and
    without importing uuid (in Python 3.11 it pulls in ``platform``, milliseconds of cold
    start): on Lambda every event's id is derived, so a flush of 500 events draws 500."""
    digest = _sha1()(_NAMESPACE_BYTES + seed.encode()).hexdigest()
    return (
        f"{digest[:8]}-{digest[8:12]}-5{digest[13:16]}-"
        f"{_VARIANT_NIBBLE[digest[16]]}{digest[17:20]}-{digest[20:32]}"
    )


@functools.cache
def _sha1() -> Callable[[bytes], Any]:
    # The interpreter's own SHA-1 (0.2 ms to import) rather than hashlib's (2-3 ms: it loads
    # OpenSSL's), imported with the first derived id: this one is part of a cold start.
    from importlib import import_module  # noqa: PLC0415

    try:
        sha1: Callable[[bytes], Any] = import_module("_sha1").sha1
    except ImportError:  # pragma: no cover - an interpreter built without it
        from hashlib import sha1  # noqa: PLC0415
    return sha1


def prepare_ids() -> None:
    """Load now what deriving an event id needs. The platform wrappers call it while the
    function initialises (from DoowTracker.prepare), not between a handler's return and
    the log line that keeps its events: a kill there would find them in memory."""
    event_id_from_seed("")


def new_random_ids(count: int) -> list[str]:
    """``count`` random (version 4) UUID strings, drawn from the OS in one call.

    The same as ``str(uuid.uuid4())`` each, at a third of the cost: a batch of 500 events
    needs 500 of them.
    """
    raw = os.urandom(16 * count).hex()
    ids = []
    for start in range(0, 32 * count, 32):
        h = raw[start : start + 32]
        ids.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT_NIBBLE[h[16]]}{h[17:20]}-{h[20:]}")
    return ids


def new_random_id() -> str:
    return new_random_ids(1)[0]


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def canonical_uuid(value: object) -> str | None:
    """The canonical form of a UUID string, or None when it is not one."""
    if type(value) is not str:
        return None
    if _CANONICAL_UUID.fullmatch(value):
        return value  # already canonical: the common case, and much cheaper than parsing
    import uuid  # noqa: PLC0415

    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


def settled_id(event: QueuedEvent, randoms: Iterator[str]) -> str:
    """The event's id: the one it was given, one derived from its seed, or the next of
    ``randoms`` (drawn in bulk by the caller)."""
    if event.event_id is not None:
        return event.event_id
    if event.id_seed is not None:
        return event_id_from_seed(event.id_seed)
    return next(randoms)


def event_document(
    event: QueuedEvent, event_id: str, default_attribution: Attribution | None
) -> dict[str, Any]:
    """The JSON object of one event, as the official SDKs send it."""
    # Unpacked once: a field of a NamedTuple read by name costs a descriptor call each.
    metric, quantity, license_id, unit, kind, occurred_at, attribution, metadata = event[:8]
    document: dict[str, Any] = {
        "event_id": event_id,
        "license_id": license_id,
        "occurred_at": format_timestamp(occurred_at),
        "source_system": event.source_system or DEFAULT_SOURCE_SYSTEM,
        "kind": kind,
        "measurements": [{"metric_name": metric, "quantity": quantity}],
    }
    if unit is not None:
        document["unit"] = unit
    if default_attribution and attribution:
        document["attribution"] = {**default_attribution, **attribution}
    elif default_attribution or attribution:
        document["attribution"] = default_attribution or attribution
    if metadata is not None:
        document["metadata"] = metadata
    return document


# -- each event's JSON, once ------------------------------------------------------------
#
# A batch's body joins its events' JSON texts, each encoded once when the batch is formed
# (its size is then known exactly; the log lines reuse the texts). Two encoders write the
# same meaning (tests/unit/test_encoders.py reads every field back from either):
#
# - the standard library's C encoder, called directly: ``JSONEncoder.encode`` builds it
#   anew on every call, a third of the cost of encoding a small event. No circular check:
#   a document is built here of validated values, and its metadata is a JSON round trip.
# - orjson, when installed (the ``fast`` extra), four times faster still. Importing it
#   costs milliseconds (it imports uuid, dataclasses and datetime), more than a function's
#   few events a flush can win back: it is imported for a batch of FAST_JSON_MIN_EVENTS
#   events or more, else used only when the application has imported it already. An event
#   it cannot encode (an integer beyond 64 bits in metadata) falls back to the standard
#   encoder.

EncodeDocument = Callable[[dict[str, Any]], str]


def _standard_encoder() -> EncodeDocument:
    # The C accelerator of json.encoder (None on an interpreter without it). Its arguments
    # are what JSONEncoder passes for JSON_UTF8, without the markers of the circular check.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover
        return JSON_UTF8.encode
    chunks = make(None, JSON_UTF8.default, encode_basestring, None, ":", ",", False, False, False)
    join = "".join

    def encode(document: dict[str, Any]) -> str:
        return join(chunks(document, 0))

    return encode


encode_standard: EncodeDocument = _standard_encoder()


def _orjson_encoder(module: Any) -> EncodeDocument:
    dumps = module.dumps

    def encode(document: dict[str, Any]) -> str:
        try:
            text: str = dumps(document).decode()
        except TypeError:  # orjson.JSONEncodeError: e.g. an integer beyond 64 bits
            return encode_standard(document)
        return text

    return encode


_fast_encoder: EncodeDocument | None = None
_fast_unavailable = False


def document_encoder(events: int) -> EncodeDocument:
    """The encoder for a batch of ``events`` events (see above)."""
    global _fast_encoder, _fast_unavailable  # noqa: PLW0603 - found once per process
    if _fast_encoder is not None:
        return _fast_encoder
    if _fast_unavailable:
        return encode_standard
    module = sys.modules.get("orjson")
    if module is None and events >= FAST_JSON_MIN_EVENTS:
        try:
            import orjson as module  # noqa: PLC0415
        except ImportError:
            _fast_unavailable = True
            return encode_standard
    if module is None:
        return encode_standard
    _fast_encoder = _orjson_encoder(module)
    return _fast_encoder


def encode_batch(batch_id: str, documents: Sequence[dict[str, Any]]) -> bytes:
    """The request body of one batch: a single pass of the C JSON encoder."""
    return JSON_UTF8.encode(
        {"batch_id": batch_id, "sdk_version": SDK_VERSION, "events": documents}
    ).encode()


def join_batch(batch_id: str, encoded: Sequence[str]) -> bytes:
    """The same body as :func:`encode_batch`, from each document's JSON already encoded."""
    return (_batch_head(batch_id) + ",".join(encoded) + "]}").encode()


def batch_envelope_size(batch_id: str) -> int:
    """The bytes of a batch body beyond its events and the commas between them."""
    return len(_batch_head(batch_id)) + 2


def _batch_head(batch_id: str) -> str:
    return '{"batch_id":' + encode_basestring(batch_id) + _BATCH_HEAD_REST


_BATCH_HEAD_REST = ',"sdk_version":' + encode_basestring(SDK_VERSION) + ',"events":['


class SentBatch(NamedTuple):
    """A request body this client wrote, read back: ids settled, events as sent."""

    batch_id: str
    event_ids: list[str]
    documents: list[dict[str, Any]]
    body: bytes


def read_sent_batch(body: bytes) -> SentBatch | None:
    """A batch body as :func:`encode_batch` writes it, or None when it is not one (every
    event must carry a UUID ``event_id``, and the batch a UUID ``batch_id``)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    batch_id = canonical_uuid(document.get("batch_id"))
    events = document.get("events")
    if batch_id is None or not isinstance(events, list) or not events:
        return None
    event_ids = []
    for event in events:
        event_id = canonical_uuid(event.get("event_id")) if isinstance(event, dict) else None
        if event_id is None:
            return None
        event_ids.append(event_id)
    return SentBatch(batch_id, event_ids, events, body)


def compress(body: bytes) -> bytes:
    """The gzip form of a body (``Content-Encoding: gzip``), as ``gzip.compress(body,
    GZIP_LEVEL, mtime=0)`` writes it, without importing gzip."""
    import zlib  # noqa: PLC0415 - small bodies are sent uncompressed

    # A compressor object: zlib.compress() takes wbits only from Python 3.11 on.
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


def sanitize_server_text(text: object) -> str:
    """Server-supplied text as it may be shown: no control characters, at most 512 characters."""
    cleaned = _CONTROL_CHARS.sub(" ", str(text))
    return cleaned[:MAX_SERVER_TEXT]


def read_rejections(body: bytes, event_ids: Sequence[str]) -> list[Rejection] | None:
    """The events of a batch that a 207 answer rejects; None when the answer is unreadable.

    Either form the official servers use is read:
    ``{"accepted": [...], "rejected": [{"event_id", "reason"}]}`` or
    ``{"accepted": n, "rejected": n, "rejections": [{"event_id", "reason"}]}``.
    Only ids of events in the batch count, each once: a server cannot make the client
    count an event twice, or one it never sent.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    listed = document.get("rejections")
    if not isinstance(listed, list):
        listed = document.get("rejected")
    if not isinstance(listed, list):
        return None if listed is None and "accepted" not in document else []
    in_batch = set(event_ids)
    rejections: dict[str, Rejection] = {}
    for item in listed:
        if not isinstance(item, dict):
            continue
        event_id = canonical_uuid(item.get("event_id"))
        if event_id in in_batch and event_id not in rejections:
            reason = sanitize_server_text(item.get("reason") or "rejected")
            rejections[event_id] = Rejection(event_id, reason)
    return list(rejections.values())


def read_error_message(body: bytes) -> str:
    """The ``message`` of an error answer, or its text, sanitised."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return sanitize_server_text(body.decode("utf-8", "replace"))
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        return sanitize_server_text(document["message"])
    return sanitize_server_text(body.decode("utf-8", "replace"))


# ---------------------------------------------------------------------------------------
# Server side


_MAX_ECHOED_ID = 128


class WireError(Exception):
    """A request the collector refuses as a whole, with its HTTP status and reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# Spelled out so the names do not change with the Python version (3.13 renamed 413).
_ERROR_CLASSES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    408: "RequestTimeout",
    411: "LengthRequired",
    413: "PayloadTooLarge",
    414: "URITooLong",
    415: "UnsupportedMediaType",
    417: "ExpectationFailed",
    429: "TooManyRequests",
    431: "RequestHeaderFieldsTooLarge",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def error_class(status: int) -> str:
    known = _ERROR_CLASSES.get(status)
    if known is not None:
        return known
    from http import HTTPStatus  # noqa: PLC0415 - server side only

    try:
        return HTTPStatus(status).phrase.title().replace(" ", "").replace("-", "")
    except ValueError:
        return "HttpError"


def error_body(status: int, message: str) -> dict[str, str]:
    """The body of an error answer, as Doow's: ``{"message", "errorClass"}``."""
    return {"message": message, "errorClass": error_class(status)}


def echoed_id(item: object) -> str | None:
    """The id an invalid event claims, so the client can tell which one was refused."""
    if isinstance(item, dict):
        event_id = item.get("event_id")
        if isinstance(event_id, str):
            return event_id[:_MAX_ECHOED_ID]
    return None


def encoding_problem(document: dict[str, Any]) -> str | None:
    """Why a parsed event document cannot be encoded again (NaN, a lone surrogate), if so."""
    try:
        encode_batch("", [document])
    except (ValueError, TypeError, RecursionError) as exc:
        return f"cannot be encoded ({exc})"
    return None


def decode_body(
    raw: bytes,
    content_encoding: str | None,
    max_bytes: int = MAX_BATCH_BYTES,
    *,
    on_inflated: Callable[[int], object] | None = None,
) -> Any:
    """Decompress (capped at ``max_bytes``, so a gzip bomb costs nothing) and parse JSON.

    ``on_inflated`` is told how many bytes decompressing produced, before they are checked:
    the collector counts them, so what a bomb costs is measured, not assumed.
    """
    import zlib  # noqa: PLC0415 - server side only

    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        inflater = zlib.decompressobj(wbits=31)
        try:
            text = inflater.decompress(raw, max_bytes + 1)
        except zlib.error as exc:
            raise WireError(400, f"body is not valid gzip: {exc}") from None
        if on_inflated is not None:
            on_inflated(len(text))
        if len(text) > max_bytes or inflater.unconsumed_tail:
            raise WireError(413, f"decompressed body exceeds {max_bytes} bytes")
        if not inflater.eof:
            raise WireError(400, "gzip body is truncated")
    elif encoding == "identity":
        if len(raw) > max_bytes:
            raise WireError(413, f"body exceeds {max_bytes} bytes")
        text = raw
    else:
        raise WireError(415, f"unsupported Content-Encoding {sanitize_server_text(encoding)!r}")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(400, f"body is not valid UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(decoded, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise WireError(
            400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise WireError(400, "malformed JSON: nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, or an integer beyond Python's digit limit
        raise WireError(400, f"malformed JSON: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class WireBatch(NamedTuple):
    batch_id: str | None
    events: list[Any]


def read_batch(document: Any) -> WireBatch:
    if not isinstance(document, dict):
        raise WireError(400, f"body must be a JSON object, got {_json_type(document)}")
    events = document.get("events")
    if not isinstance(events, list):
        raise WireError(400, f"'events' must be an array, got {_json_type(events)}")
    if not events:
        raise WireError(400, "'events' is empty")
    if len(events) > MAX_BATCH_EVENTS:
        raise WireError(413, f"{len(events)} events in one batch; the limit is {MAX_BATCH_EVENTS}")
    batch_id = document.get("batch_id")
    if batch_id is not None and (not isinstance(batch_id, str) or canonical_uuid(batch_id) is None):
        raise WireError(400, "'batch_id' must be a UUID string")
    return WireBatch(batch_id, events)


class WireEvent(NamedTuple):
    """One event as the collector stores it (first measurement lifted out for queries)."""

    event_id: str
    license_id: str
    metric: str
    quantity: float
    unit: str | None
    kind: str
    occurred_at: str
    source_system: str
    attribution: Mapping[str, Any] | None
    metadata: Mapping[str, Any] | None
    measurements: list[dict[str, Any]]


def read_event(item: Any) -> WireEvent | str:
    """The event, or the reason it is rejected."""
    if not isinstance(item, dict):
        return f"event must be an object, got {_json_type(item)}"
    event_id = canonical_uuid(item.get("event_id"))
    if event_id is None:
        return "event_id must be a UUID string"
    kind = item.get("kind", KIND_USAGE)
    if (problem := kind_problem(kind)) is not None:
        return f"kind {problem}"
    if (problem := name_problem(item.get("license_id"))) is not None:
        return f"license_id {problem}"
    measurements = item.get("measurements")
    if measurements is None and "metric" in item:  # the Node SDK's copies, without measurements
        measurements = [{"metric_name": item.get("metric"), "quantity": item.get("quantity")}]
    if not isinstance(measurements, list) or not measurements:
        return "measurements must be a non-empty array"
    for measurement in measurements:
        if not isinstance(measurement, dict):
            return "each measurement must be an object"
        if (problem := name_problem(measurement.get("metric_name"))) is not None:
            return f"metric_name {problem}"
        if (problem := quantity_problem(measurement.get("quantity"), kind)) is not None:
            return f"quantity {problem}"
    occurred_at = item.get("occurred_at", item.get("timestamp"))
    if not isinstance(occurred_at, str) or not _is_timestamp(occurred_at):
        return "occurred_at must be an RFC 3339 timestamp"
    for field in ("unit", "source_system"):
        value = item.get(field)
        if value is not None and (problem := optional_text_problem(value)) is not None:
            return f"{field} {problem}"
    attribution = item.get("attribution")
    if attribution is not None and (problem := attribution_problem(attribution)) is not None:
        return f"attribution {problem}"
    metadata = item.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        return "metadata must be an object"
    first = measurements[0]
    return WireEvent(
        event_id=event_id,
        license_id=item["license_id"],
        metric=first["metric_name"],
        quantity=first["quantity"],
        unit=item.get("unit"),
        kind=kind,
        occurred_at=occurred_at,
        source_system=item.get("source_system") or DEFAULT_SOURCE_SYSTEM,
        attribution=attribution,
        metadata=metadata,
        measurements=measurements,
    )


def _is_timestamp(text: str) -> bool:
    candidate = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = _fromisoformat()(candidate)
    except ValueError:
        return False
    return moment.tzinfo is not None and math.isfinite(moment.timestamp())


@functools.cache
def _fromisoformat() -> Callable[[str], Any]:
    # datetime is imported on first use: only the collector reads timestamps.
    from datetime import datetime  # noqa: PLC0415

    return datetime.fromisoformat


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"

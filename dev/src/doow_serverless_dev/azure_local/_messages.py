"""The host's messages, as the Azure Functions library worker reads and builds them.

The proxy worker that the Functions host starts hands the library worker
(``azure_functions_runtime``) a module of protobuf message classes, generated from the host's
``FunctionRpc.proto``, as the ``protos`` property of each request. Those definitions are not
published on a package registry in their current form, so this module provides the part of
that interface the library worker uses: classes with the same names, field names, oneofs and
enum constants. They are written here from what the worker reads and builds, not copied.

Like protobuf messages, a field given as None is unset, an unset field reads as its default,
an unknown field is an error, and ``WhichOneof`` names the member of a oneof that is set.
Nothing is serialized: the worker and this host live in one process, as with the proxy.
"""

from __future__ import annotations

import base64
import datetime
import enum
from collections.abc import Callable
from typing import Any, ClassVar

_Default = Callable[[], Any]


def _empty() -> None:
    return None


class Message:
    """A protobuf-like message: keyword construction, defaults, oneofs."""

    FIELDS: ClassVar[dict[str, _Default]] = {}
    ONEOFS: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self.FIELDS)
        if unknown:
            raise ValueError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        set_fields = []
        for name, default in self.FIELDS.items():
            value = values.get(name)
            if value is None:
                value = default()
            else:
                set_fields.append(name)
            setattr(self, name, value)
        self._set = frozenset(set_fields)
        for group, members in self.ONEOFS.items():
            chosen = [member for member in members if member in self._set]
            if len(chosen) > 1:
                raise ValueError(f"{type(self).__name__}.{group}: more than one of {chosen}")

    def WhichOneof(self, group: str) -> str | None:
        for member in self.ONEOFS[group]:
            if member in self._set:
                return member
        return None

    def HasField(self, name: str) -> bool:
        return name in self._set

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in sorted(self._set))
        return f"{type(self).__name__}({shown})"


def _message(name: str, fields: dict[str, _Default], **oneofs: tuple[str, ...]) -> type[Message]:
    return type(name, (Message,), {"FIELDS": fields, "ONEOFS": oneofs})


_str: _Default = str
_int: _Default = int
_bool: _Default = bool
_dict: _Default = dict
_list: _Default = list

# -- shared -------------------------------------------------------------------------------


class StatusResult(Message):
    Failure = 0
    Success = 1
    Cancelled = 2
    FIELDS: ClassVar[dict[str, _Default]] = {
        "status": _int,
        "result": _str,
        "exception": _empty,
        "logs": _list,
    }


RpcException = _message(
    "RpcException",
    {"source": _str, "stack_trace": _str, "message": _str, "is_user_exception": _bool,
     "type": _str},
)  # fmt: skip
NullableString = _message("NullableString", {"value": _empty})
NullableBool = _message("NullableBool", {"value": _empty})
NullableDouble = _message("NullableDouble", {"value": _empty})
NullableTimestamp = _message("NullableTimestamp", {"value": _empty})


class RpcHttpCookie(Message):
    class SameSite:
        Lax = 1
        Strict = 2
        ExplicitNone = 3

    FIELDS: ClassVar[dict[str, _Default]] = {
        "name": _str,
        "value": _str,
        "domain": _empty,
        "path": _empty,
        "expires": _empty,
        "secure": _empty,
        "http_only": _empty,
        "same_site": _int,
        "max_age": _empty,
    }


# protobuf spells the zero member "None"; a Python class body cannot.
setattr(RpcHttpCookie.SameSite, "None", 0)


RpcHttp = _message(
    "RpcHttp",
    {"method": _str, "url": _str, "headers": _dict, "body": _empty, "params": _dict,
     "status_code": _str, "query": _dict, "enable_content_negotiation": _bool,
     "cookies": _list, "identities": _list, "nullable_headers": _dict,
     "nullable_params": _dict, "nullable_query": _dict},
)  # fmt: skip

_DATA = (
    "string", "json", "bytes", "stream", "http", "int", "double", "collection_bytes",
    "collection_string", "collection_double", "collection_sint64", "model_binding_data",
    "collection_model_binding_data",
)  # fmt: skip
TypedData = _message("TypedData", dict.fromkeys(_DATA, _empty), data=_DATA)
CollectionBytes = _message("CollectionBytes", {"bytes": _list})
CollectionString = _message("CollectionString", {"string": _list})
ParameterBinding = _message(
    "ParameterBinding",
    {"name": _str, "data": _empty, "rpc_shared_memory": _empty},
    rpc_data=("data", "rpc_shared_memory"),
)

# -- init, metadata, load ------------------------------------------------------------------

WorkerInitRequest = _message(
    "WorkerInitRequest",
    {"host_version": _str, "capabilities": _dict, "log_categories": _dict,
     "worker_directory": _str, "function_app_directory": _str},
)  # fmt: skip
WorkerMetadata = _message(
    "WorkerMetadata",
    {"runtime_name": _str, "runtime_version": _str, "worker_version": _str,
     "worker_bitness": _str, "custom_properties": _dict},
)  # fmt: skip
WorkerInitResponse = _message(
    "WorkerInitResponse",
    {"worker_version": _str, "capabilities": _dict, "result": _empty,
     "worker_metadata": _empty},
)  # fmt: skip
FunctionsMetadataRequest = _message("FunctionsMetadataRequest", {"function_app_directory": _str})
FunctionMetadataResponse = _message(
    "FunctionMetadataResponse",
    {"function_metadata_results": _list, "result": _empty,
     "use_default_metadata_indexing": _bool},
)  # fmt: skip


class BindingInfo(Message):
    # Direction ("in" is set below: a Python keyword)
    out = 1
    inout = 2
    # DataType
    undefined = 0
    string = 1
    binary = 2
    stream = 3
    FIELDS: ClassVar[dict[str, _Default]] = {
        "type": _str,
        "direction": _int,
        "data_type": _int,
        "properties": _dict,
    }


# ``in`` is a Python keyword; protobuf exposes the member under that name anyway.
setattr(BindingInfo, "in", 0)

RpcRetryOptions = _message(
    "RpcRetryOptions",
    {"max_retry_count": _int, "delay_interval": _empty, "minimum_interval": _empty,
     "maximum_interval": _empty, "retry_strategy": _empty},
)  # fmt: skip
RpcFunctionMetadata = _message(
    "RpcFunctionMetadata",
    {"name": _str, "directory": _str, "script_file": _str, "entry_point": _str,
     "bindings": _dict, "is_proxy": _bool, "status": _empty, "language": _str,
     "raw_bindings": _list, "function_id": _str, "managed_dependency_enabled": _bool,
     "retry_options": _empty, "properties": _dict},
)  # fmt: skip
FunctionLoadRequest = _message(
    "FunctionLoadRequest",
    {"function_id": _str, "metadata": _empty, "managed_dependency_enabled": _bool},
)
FunctionLoadResponse = _message(
    "FunctionLoadResponse",
    {"function_id": _str, "result": _empty, "is_dependency_downloaded": _bool},
)

# -- invocation ------------------------------------------------------------------------------

RpcTraceContext = _message(
    "RpcTraceContext", {"trace_parent": _str, "trace_state": _str, "attributes": _dict}
)
RetryContext = _message(
    "RetryContext", {"retry_count": _int, "max_retry_count": _int, "exception": _empty}
)
InvocationRequest = _message(
    "InvocationRequest",
    {"invocation_id": _str, "function_id": _str, "input_data": _list,
     "trigger_metadata": _dict, "trace_context": RpcTraceContext, "retry_context": RetryContext},
)  # fmt: skip
InvocationResponse = _message(
    "InvocationResponse",
    {"invocation_id": _str, "output_data": _list, "return_value": _empty, "result": _empty},
)

_CONTENT = (
    "worker_init_request", "functions_metadata_request", "function_load_request",
    "invocation_request", "function_environment_reload_request", "worker_status_request",
)  # fmt: skip
StreamingMessage = _message(
    "StreamingMessage",
    {"request_id": _str, **dict.fromkeys(_CONTENT, _empty)},
    content=_CONTENT,
)
FunctionEnvironmentReloadResponse = _message(
    "FunctionEnvironmentReloadResponse",
    {"worker_metadata": _empty, "capabilities": _dict, "result": _empty},
)


# -- to and from JSON (the driver's side of the pipe) -------------------------------------


def typed_data(document: dict[str, Any] | None) -> Message | None:
    """A TypedData from ``{"string": ...}``, ``{"bytes": <base64>}``, ``{"http": {...}}``,
    ``{"collection_bytes": [<base64>, ...]}``, ``{"collection_string": [...]}``..."""
    if not document:
        return None
    ((kind, value),) = document.items()
    if kind == "bytes":
        return TypedData(bytes=base64.b64decode(value))
    if kind == "collection_bytes":
        items = [base64.b64decode(item) for item in value]
        return TypedData(collection_bytes=CollectionBytes(bytes=items))
    if kind == "collection_string":
        return TypedData(collection_string=CollectionString(string=list(value)))
    if kind == "http":
        http = dict(value)
        http["body"] = typed_data(http.get("body"))
        return TypedData(http=RpcHttp(**http))
    return TypedData(**{kind: value})


def to_json(value: Any) -> Any:
    """A message (or anything the worker put in one) as plain JSON values."""
    if isinstance(value, Message):
        return {name: to_json(getattr(value, name)) for name in sorted(value._set)}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)

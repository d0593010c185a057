"""Small HTTP helpers shared by the collector's modules: error bodies and JSON encoding."""

from __future__ import annotations

import ipaddress
import json
import logging
from http import HTTPStatus
from typing import Any

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

logger = logging.getLogger("doow_serverless_dev.collector")

_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def error_class(status: int) -> str:
    known = _ERROR_CLASSES.get(status)
    if known is not None:
        return known
    try:
        return HTTPStatus(status).phrase.title().replace(" ", "").replace("-", "")
    except ValueError:
        return "HttpError"


def error_body(status: int, message: str) -> dict[str, str]:
    return {"message": message, "errorClass": error_class(status)}


def encode_json(document: Any) -> bytes:
    return _encoder.encode(document).encode()


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback

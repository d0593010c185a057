"""No SDK: the handler the others are measured against."""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return {"statusCode": 200}

"""Fault plans: scripted misbehaviour of the ingest endpoint, switchable while running.

A plan is ``{"script": [step, ...], "then": step | null, "latency_ms": 0}``. Each ingest
request takes the next script step; once the script is used up, ``then`` applies to every
later request (null: normal processing). See :func:`parse_plan` for the steps.
"""

from __future__ import annotations

import copy
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

MAX_SCRIPT_STEPS = 10_000
MAX_DELAY_MS = 300_000
MAX_LATENCY_MS = 60_000
MAX_MESSAGE_CHARS = 65_536

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_RESERVED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})

StepKind = Literal["status", "reject", "hang", "reset", "accept"]


class FaultPlanError(ValueError):
    """A fault plan that cannot be used; the message names the problem."""


@dataclass(frozen=True)
class FaultStep:
    kind: StepKind
    status: int = 0
    retry_after: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    after_store: bool = False
    reject: int = 0
    message: str | None = None
    delay_s: float = 0.0


ACCEPT = FaultStep("accept")


@dataclass(frozen=True)
class FaultPlan:
    script: tuple[FaultStep, ...]
    then: FaultStep | None
    latency_s: float
    source: Mapping[str, Any] = field(compare=False)


def parse_plan(document: object) -> FaultPlan:
    if not isinstance(document, dict):
        raise FaultPlanError("a fault plan must be a JSON object")
    _no_unknown_keys(document, {"script", "then", "latency_ms"}, "plan")
    script = document.get("script", [])
    if not isinstance(script, list):
        raise FaultPlanError("script must be an array of steps")
    if len(script) > MAX_SCRIPT_STEPS:
        raise FaultPlanError(f"script has {len(script)} steps; at most {MAX_SCRIPT_STEPS}")
    steps = tuple(_parse_step(step, f"script[{index}]") for index, step in enumerate(script))
    then = document.get("then")
    latency_ms = _milliseconds(document.get("latency_ms", 0), "latency_ms", MAX_LATENCY_MS)
    return FaultPlan(
        script=steps,
        then=None if then is None else _parse_step(then, "then"),
        latency_s=latency_ms / 1000,
        source=copy.deepcopy(document),
    )


def _parse_step(step: object, where: str) -> FaultStep:
    if not isinstance(step, dict):
        raise FaultPlanError(f"{where} must be an object")
    delay_s = _milliseconds(step.get("delay_ms", 0), f"{where}.delay_ms", MAX_DELAY_MS) / 1000
    if "action" in step:
        if "status" in step:
            raise FaultPlanError(f"{where} has both 'action' and 'status'; give one")
        return _parse_action(step, where, delay_s)
    if "status" not in step:
        raise FaultPlanError(f"{where} needs 'status' or 'action'")
    allowed = {"status", "retry_after", "headers", "after_store", "message", "delay_ms"}
    status = step["status"]
    if type(status) is not int or not 200 <= status <= 599:
        raise FaultPlanError(f"{where}.status must be an integer from 200 to 599")
    if "reject" in step:
        if status != 207:
            raise FaultPlanError(f"{where}.reject needs status 207")
        _no_unknown_keys(step, {"status", "reject", "delay_ms"}, where)
        reject = step["reject"]
        if type(reject) is not int or reject < 0:
            raise FaultPlanError(f"{where}.reject must be a non-negative integer")
        return FaultStep("reject", status=status, reject=reject, delay_s=delay_s)
    _no_unknown_keys(step, allowed, where)
    return FaultStep(
        "status",
        status=status,
        retry_after=_retry_after(step.get("retry_after"), where),
        headers=_headers(step.get("headers", {}), where),
        after_store=_flag(step.get("after_store", False), f"{where}.after_store"),
        message=_message(step.get("message"), where),
        delay_s=delay_s,
    )


def _parse_action(step: dict[str, Any], where: str, delay_s: float) -> FaultStep:
    action = step["action"]
    if action == "reset":
        _no_unknown_keys(step, {"action", "after_store", "delay_ms"}, where)
        after_store = _flag(step.get("after_store", False), f"{where}.after_store")
        return FaultStep("reset", after_store=after_store, delay_s=delay_s)
    if action == "hang":
        # after_store: the batch is stored, then the answer never comes.
        _no_unknown_keys(step, {"action", "after_store", "delay_ms"}, where)
        after_store = _flag(step.get("after_store", False), f"{where}.after_store")
        return FaultStep("hang", after_store=after_store, delay_s=delay_s)
    if action == "accept":
        _no_unknown_keys(step, {"action", "delay_ms"}, where)
        return FaultStep("accept", delay_s=delay_s)
    raise FaultPlanError(f"{where}.action must be 'hang', 'reset' or 'accept'")


def _no_unknown_keys(document: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in document if key not in allowed)
    if unknown:
        raise FaultPlanError(
            f"{where} has unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )


def _milliseconds(value: object, where: str, maximum: int) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= maximum
    ):
        raise FaultPlanError(f"{where} must be a number of milliseconds from 0 to {maximum}")
    return float(value)


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise FaultPlanError(f"{where} must be true or false")
    return value


def _retry_after(value: object, where: str) -> str | None:
    if value is None:
        return None
    if type(value) is int and value >= 0:
        return str(value)
    if isinstance(value, str) and value and _HEADER_VALUE.fullmatch(value) and len(value) < 200:
        return value
    raise FaultPlanError(f"{where}.retry_after must be a header value (seconds or an HTTP date)")


def _headers(value: object, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise FaultPlanError(f"{where}.headers must be an object of header names to strings")
    headers = []
    for name, text in value.items():
        if (
            not isinstance(name, str)
            or not _HEADER_NAME.fullmatch(name)
            or name.lower() in _RESERVED_HEADERS
        ):
            raise FaultPlanError(f"{where}.headers has a header name that cannot be sent")
        if not isinstance(text, str) or not _HEADER_VALUE.fullmatch(text) or len(text) > 8192:
            raise FaultPlanError(f"{where}.headers[{name!r}] must be a single-line string")
        headers.append((name, text))
    return tuple(headers)


def _message(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_MESSAGE_CHARS:
        raise FaultPlanError(f"{where}.message must be a string of at most {MAX_MESSAGE_CHARS}")
    return value


class FaultController:
    """The active plan, shared by all handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan: FaultPlan | None = None
        self._position = 0
        self._release = threading.Event()

    def set(self, plan: FaultPlan | None) -> None:
        """Replace the plan; requests hanging under the old one are released."""
        with self._lock:
            self._release.set()
            self._release = threading.Event()
            self._plan = plan
            self._position = 0

    def take(self) -> tuple[FaultStep | None, float, threading.Event]:
        """The step for one ingest request, the plan's latency, and the event ending a hang."""
        with self._lock:
            plan = self._plan
            if plan is None:
                return None, 0.0, self._release
            if self._position < len(plan.script):
                step: FaultStep | None = plan.script[self._position]
                self._position += 1
            else:
                step = plan.then
            return step, plan.latency_s, self._release

    def release_all(self) -> None:
        with self._lock:
            self._release.set()

    def describe(self) -> dict[str, Any]:
        with self._lock:
            plan = self._plan
            if plan is None:
                return {"plan": None, "position": 0, "remaining": 0}
            return {
                "plan": plan.source,
                "position": self._position,
                "remaining": len(plan.script) - self._position,
            }

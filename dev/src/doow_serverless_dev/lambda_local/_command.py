"""``doow-serverless invoke``: ``sam local invoke`` without a container.

Reads the function from a SAM template, runs it under the real runtime client with the
template's Timeout, MemorySize and environment, hands it an event file, and sends its usage
events to a collector: one started for the run, or the endpoint the environment names.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from doow_serverless._core.constants import ENV_API_KEY, ENV_DELIVERY, ENV_ENDPOINT, KEY_PREFIX
from doow_serverless._invocation.delivery import DELIVERIES

if TYPE_CHECKING:
    from ._function import InvocationResult

# Inside `sam local`'s container this name is the developer's machine; here it is this one.
DOCKER_HOST_NAME = "host.docker.internal"
LOCAL_DEV_KEY = "dk_local_invoke"


def configure_invoke_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run a function of a SAM template under the real Lambda runtime client (awslambdaric), "
        "without a container, with the template's Timeout and environment. Unless the "
        f"environment names {ENV_ENDPOINT} (or --endpoint is given), a local collector is "
        "started for the run and the events it received are listed at the end."
    )
    parser.add_argument(
        "function", nargs="?", help="the function's logical id (optional with one function)"
    )
    parser.add_argument(
        "-t", "--template", type=Path, default=Path("template.yaml"), help="template.yaml"
    )
    parser.add_argument(
        "-e", "--event", type=Path, help="a JSON event file (default: an empty object)"
    )
    parser.add_argument(
        "-n",
        "--env-vars",
        type=Path,
        help="a JSON file of environment overrides, in sam local's env.json format",
    )
    parser.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter values",
    )
    parser.add_argument("--endpoint", help="send the events here instead of a collector")
    parser.add_argument(
        "--count", type=int, default=1, help="invoke this many times in one warm environment"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="run as Lambda Managed Instances: N worker processes, the --count invocations "
        "sent at once, nothing frozen, SIGTERM at the end",
    )
    parser.add_argument(
        "--delivery",
        choices=DELIVERIES,
        help=f"how the wrapped handler delivers its events (sets {ENV_DELIVERY})",
    )
    parser.add_argument("--python", help="the interpreter that runs awslambdaric")
    parser.set_defaults(run=run_invoke)


def run_invoke(args: argparse.Namespace) -> int:
    from ._template import TemplateError, read_functions  # noqa: PLC0415

    try:
        overrides = _pairs(args.parameter_overrides)
        functions = read_functions(args.template, overrides)
        spec = _choose(functions, args.function, args.template)
        event = _read_json(args.event) if args.event else {}
        env_file = _read_json(args.env_vars) if args.env_vars else {}
    except (TemplateError, ValueError, OSError) as exc:
        print(f"doow-serverless invoke: {exc}", file=sys.stderr)
        return 2
    problems = spec.problems()
    if problems:
        for problem in problems:
            print(f"doow-serverless invoke: {problem}", file=sys.stderr)
        return 2
    if args.count < 1:
        print("doow-serverless invoke: --count must be at least 1", file=sys.stderr)
        return 2
    if args.concurrency is not None and args.concurrency < 1:
        print("doow-serverless invoke: --concurrency must be at least 1", file=sys.stderr)
        return 2
    if args.python is None and not _has_runtime_client():
        print(
            "doow-serverless invoke: the Lambda runtime client is not installed here; "
            "run: pip install awslambdaric (or pass --python with one that has it)",
            file=sys.stderr,
        )
        return 2
    environment = dict(spec.environment)
    overrides = _env_overrides(env_file, spec.logical_id)
    if args.endpoint:
        overrides[ENV_ENDPOINT] = args.endpoint
    if args.delivery:
        overrides[ENV_DELIVERY] = args.delivery
    environment.update(overrides)
    environment = {name: _local_host(value) for name, value in environment.items()}

    # The template's endpoint is where the deployed function sends; locally, events go to
    # a collector started for the run, unless --endpoint or --env-vars names another.
    collector = None
    if ENV_ENDPOINT not in overrides:
        from ..collector import Collector  # noqa: PLC0415

        collector = Collector().start()
        environment[ENV_ENDPOINT] = collector.url
        if not environment.get(ENV_API_KEY, "").startswith(KEY_PREFIX):
            environment[ENV_API_KEY] = LOCAL_DEV_KEY
        print(f"doow-serverless invoke: collector at {collector.url}", file=sys.stderr)
    for name in spec.unresolved:
        if name not in overrides and not (collector and name == ENV_API_KEY):
            print(
                f"doow-serverless invoke: {name} has no local value (pass it in --env-vars "
                "or --parameter-overrides); left empty",
                file=sys.stderr,
            )
    try:
        return _invoke(spec, environment, event, args)
    finally:
        if collector is not None:
            _print_events(collector.events(limit=1000))
            collector.stop()


def _invoke(spec: Any, environment: dict[str, str], event: Any, args: argparse.Namespace) -> int:
    from ._function import LocalFunction  # noqa: PLC0415

    with LocalFunction(
        spec.handler,
        code_dir=spec.code_dir,
        timeout=spec.timeout_seconds,
        memory_size=spec.memory_mb,
        environment=environment,
        function_name=spec.logical_id,
        runtime=spec.runtime,
        python=args.python,
        on_output=lambda line: print(line, file=sys.stderr),
        concurrency=args.concurrency,
    ) as function:
        if args.concurrency is None:
            results = [_report(function.invoke(event)) for _ in range(args.count)]
        else:
            with ThreadPoolExecutor(args.concurrency) as pool:
                calls = [pool.submit(function.invoke, event) for _ in range(args.count)]
                results = [_report(call.result()) for call in calls]
    return 0 if all(result.ok for result in results) else 1


def _report(result: InvocationResult) -> InvocationResult:
    print(f"doow-serverless invoke: {_summary(result)}", file=sys.stderr)
    print(result.body.decode("utf-8", "replace"))
    return result


def _summary(result: InvocationResult) -> str:
    duration = f"{result.duration * 1000:.0f} ms" if result.duration is not None else "-"
    summary = f"{result.status} in {duration}"
    # After the response, an extension may hold the invocation: what Lambda bills.
    held = (result.completed or 0.0) - (result.duration or 0.0)
    if result.completed is not None and held >= 0.0005:
        summary += f", complete after {result.completed * 1000:.0f} ms"
    start = "cold" if result.cold_start else "warm"
    return f"{summary} ({start} start, request {result.request_id})"


def _choose(functions: list[Any], name: str | None, template: Path) -> Any:
    if not functions:
        raise ValueError(f"{template} has no AWS::Serverless::Function with a zip package")
    if name is None:
        if len(functions) > 1:
            names = ", ".join(spec.logical_id for spec in functions)
            raise ValueError(f"{template} has several functions; name one of: {names}")
        return functions[0]
    for spec in functions:
        if spec.logical_id == name:
            return spec
    raise ValueError(f"{template} has no function {name!r}")


def _env_overrides(document: object, logical_id: str) -> dict[str, str]:
    """sam local's env.json: ``{"Parameters": {...}}`` for all functions, then per function."""
    if not isinstance(document, dict):
        raise ValueError("the --env-vars file must hold a JSON object")
    merged: dict[str, str] = {}
    for key in ("Parameters", logical_id):
        section = document.get(key) or {}
        if not isinstance(section, dict):
            raise ValueError(f"--env-vars: {key} must be an object of names to values")
        merged.update({name: _text(value) for name, value in section.items()})
    return merged


def _local_host(value: str) -> str:
    return value.replace(f"//{DOCKER_HOST_NAME}", "//127.0.0.1")


def _text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise ValueError(f"--parameter-overrides takes NAME=VALUE, got {item!r}")
        pairs[name] = value
    return pairs


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc})") from None


def _has_runtime_client() -> bool:
    from importlib.util import find_spec  # noqa: PLC0415

    return find_spec("awslambdaric") is not None


def _print_events(events: list[dict[str, Any]]) -> None:
    print(f"doow-serverless invoke: the collector received {len(events)} event(s)", file=sys.stderr)
    for event in reversed(events):
        measurements = event.get("measurements") or [{}]
        print(
            f"  {event.get('event_id')}  {measurements[0].get('metric_name')}="
            f"{measurements[0].get('quantity')}  license={event.get('license_id')}",
            file=sys.stderr,
        )

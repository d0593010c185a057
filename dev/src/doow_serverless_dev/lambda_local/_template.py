"""Read a SAM template's Python functions, for ``doow-serverless invoke`` and the CI check.

Deliberately small; what it understands:
- ``AWS::Serverless::Function`` resources (zip packages), merged over ``Globals.Function``;
- their ``Handler``, ``CodeUri`` (a local folder), ``Runtime``, ``Timeout``, ``MemorySize``
  and ``Environment.Variables``;
- ``!Ref`` to a template parameter (its override, else its default) or a pseudo parameter,
  and ``!Sub`` of such names. A variable with any other value is left empty (and named in
  ``unresolved``), as ``sam local`` does without ``--env-vars``.

It also checks what cfn-lint does not on SAM resources: that ``Runtime`` is a Python runtime
this package supports on Lambda and ``Timeout`` is a whole number of seconds from 1 to 900;
and ``deployed_resources`` says which resources a set of parameters deploys (``Conditions``
of ``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or`` evaluated).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUPPORTED_RUNTIMES = ("python3.10", "python3.11", "python3.12", "python3.13", "python3.14")
MAX_TIMEOUT_S = 900  # Lambda's limit
DEFAULT_TIMEOUT_S = 3  # SAM's default when a function sets none
DEFAULT_MEMORY_MB = 128
FUNCTION_TYPE = "AWS::Serverless::Function"

_PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "local",
    "AWS::URLSuffix": "amazonaws.com",
}
_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9:._-]+)\}")


class TemplateError(ValueError):
    """A template that cannot be read or has no usable function; the message says why."""


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str | None
    code_dir: Path
    runtime: str | None
    timeout: object  # as written (checked by problems)
    memory_size: object
    environment: dict[str, str]
    unresolved: tuple[str, ...]  # variables left empty: their value cannot be resolved locally

    @property
    def timeout_seconds(self) -> int:
        return _whole_number(self.timeout) or DEFAULT_TIMEOUT_S

    @property
    def memory_mb(self) -> int:
        return _whole_number(self.memory_size) or DEFAULT_MEMORY_MB

    def problems(self) -> list[str]:
        """Why this function would not deploy or run as a Python function; empty if fine."""
        found = []
        where = f"{self.logical_id}:"
        if self.runtime not in SUPPORTED_RUNTIMES:
            found.append(
                f"{where} Runtime {self.runtime!r} is not one of {', '.join(SUPPORTED_RUNTIMES)}"
            )
        timeout = _whole_number(self.timeout)
        if timeout is None or not 1 <= timeout <= MAX_TIMEOUT_S:
            found.append(
                f"{where} Timeout {self.timeout!r} must be a whole number of seconds "
                f"from 1 to {MAX_TIMEOUT_S}"
            )
        memory = _whole_number(self.memory_size)
        if memory is None or not 128 <= memory <= 10_240:
            found.append(f"{where} MemorySize {self.memory_size!r} must be from 128 to 10240 MB")
        if not self.handler or "." not in self.handler:
            found.append(f"{where} Handler {self.handler!r} must be 'module.function'")
        return found


def load_template(path: str | Path) -> dict[str, Any]:
    """The template as plain data; CloudFormation's short tags become their long forms."""
    try:
        import yaml  # noqa: PLC0415 - only the invoke command and the check need it
    except ImportError:
        raise TemplateError(
            "reading template.yaml needs PyYAML: pip install 'doow-serverless[lambda-local]'"
        ) from None

    class Loader(yaml.SafeLoader):
        pass

    def intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if suffix == "GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    Loader.add_multi_constructor("!", intrinsic)
    try:
        text = Path(path).read_text(encoding="utf-8")
        document = yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{path} has no Resources")
    return document


def read_functions(
    path: str | Path, parameter_overrides: Mapping[str, str] | None = None
) -> list[FunctionSpec]:
    template_path = Path(path)
    template = load_template(template_path)
    parameters = _parameters(template, parameter_overrides or {})
    globals_ = template.get("Globals", {}).get("Function", {}) or {}
    functions = []
    for logical_id, resource in template["Resources"].items():
        if not isinstance(resource, dict) or resource.get("Type") != FUNCTION_TYPE:
            continue
        properties = {**globals_, **(resource.get("Properties") or {})}
        if properties.get("PackageType") == "Image":
            continue
        unresolved: list[str] = []
        variables = {
            **((globals_.get("Environment") or {}).get("Variables") or {}),
            **((properties.get("Environment") or {}).get("Variables") or {}),
        }
        environment = {
            name: _resolve(value, parameters, name, unresolved) for name, value in variables.items()
        }
        code_uri = properties.get("CodeUri", ".")
        if not isinstance(code_uri, str):
            raise TemplateError(f"{logical_id}: CodeUri must be a local folder for a local run")
        functions.append(
            FunctionSpec(
                logical_id=logical_id,
                handler=properties.get("Handler"),
                code_dir=(template_path.parent / code_uri).resolve(),
                runtime=properties.get("Runtime"),
                timeout=properties.get("Timeout", DEFAULT_TIMEOUT_S),
                memory_size=properties.get("MemorySize", DEFAULT_MEMORY_MB),
                environment=environment,
                unresolved=tuple(unresolved),
            )
        )
    return functions


def deployed_resources(
    path: str | Path, parameter_overrides: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """The resources CloudFormation would create with these parameters: those without a
    ``Condition``, and those whose condition holds (``Fn::Equals``, ``Fn::Not``, ``Fn::And``,
    ``Fn::Or``, ``Condition`` and ``Ref`` of parameters)."""
    template = load_template(path)
    parameters = _parameters(template, parameter_overrides or {})
    conditions = template.get("Conditions") or {}

    def holds(expression: object) -> bool:
        value = _evaluate(expression, parameters, conditions, holds)
        if not isinstance(value, bool):
            raise TemplateError(f"condition {expression!r} is not true or false")
        return value

    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if isinstance(resource, dict)
        and ("Condition" not in resource or holds({"Condition": resource["Condition"]}))
    }


def _evaluate(
    expression: object,
    parameters: Mapping[str, str],
    conditions: Mapping[str, Any],
    holds: Any,
) -> object:
    if not isinstance(expression, dict) or len(expression) != 1:
        return expression if not isinstance(expression, (int, float)) else str(expression)
    ((function, argument),) = expression.items()
    if function == "Ref" and isinstance(argument, str) and argument in parameters:
        return parameters[argument]
    if (
        function in ("Condition", "Fn::Condition")
        and isinstance(argument, str)
        and argument in conditions
    ):
        return holds(conditions[argument])
    if function == "Fn::Equals" and isinstance(argument, list) and len(argument) == 2:
        left, right = (_evaluate(item, parameters, conditions, holds) for item in argument)
        return left == right
    if function == "Fn::Not" and isinstance(argument, list) and len(argument) == 1:
        return not holds(argument[0])
    if function == "Fn::And" and isinstance(argument, list):
        return all(holds(item) for item in argument)
    if function == "Fn::Or" and isinstance(argument, list):
        return any(holds(item) for item in argument)
    raise TemplateError(f"cannot evaluate {expression!r} locally")


def _parameters(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    values = dict(_PSEUDO)
    for name, declaration in (template.get("Parameters") or {}).items():
        if isinstance(declaration, dict) and "Default" in declaration:
            values[name] = str(declaration["Default"])
    values.update(overrides)
    return values


def _resolve(value: object, parameters: Mapping[str, str], name: str, unresolved: list[str]) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref" and isinstance(argument, str) and argument in parameters:
            return parameters[argument]
        if function == "Fn::Sub" and isinstance(argument, str):
            missing = [name for name in _SUB_NAME.findall(argument) if name not in parameters]
            if not missing:
                return _SUB_NAME.sub(lambda match: parameters[match.group(1)], argument)
    unresolved.append(name)
    return ""


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None

"""AWS's JSON 1.1 protocol as botocore speaks it: targets, input validation, output shaping.

A request is ``POST /`` with ``X-Amz-Target: <targetPrefix>.<Operation>`` and a JSON body. The body is checked
against botocore's own input shape: botocore's ``ParamValidator`` checks types, required and unknown members
and minimums; it skips maximums, enums and patterns, which AWS enforces on the server, so this module checks
those too (patterns match the whole value, as AWS's documented ``^...$`` patterns do). Responses are built
from the operation's output shape, with timestamps as epoch seconds, which is what AWS's JSON protocol sends
and what botocore turns back into datetimes.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import botocore.session
import botocore.utils
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

from local_aws.sagemaker_service.errors import ApiError

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
# Java's Unicode classes in botocore's patterns, approximated with what Python's re knows.
_UNICODE_CLASSES = {r"\p{L}": r"\w", r"\p{N}": r"\w", r"\p{Z}": r"\s"}
_SHOWN_VALUE_CHARS = 100

# An operation's implementation: the validated request in, the response members out (None: no output).
Handler = Callable[[dict[str, Any]], Mapping[str, Any] | None]


@dataclass(frozen=True)
class Service:
    """One AWS service the app serves: botocore's model and the code AWS uses for a bad parameter."""

    name: str
    model: ServiceModel
    validation_code: str

    @property
    def target_prefix(self) -> str:
        return self.model.metadata["targetPrefix"]

    def invalid(self, message: str) -> ApiError:
        return ApiError(self.validation_code, message)


@functools.cache
def service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


def parse_target(target: str | None, services: Mapping[str, Service]) -> tuple[Service, OperationModel]:
    """The service and operation an ``X-Amz-Target`` header names; AWS's error for anything else."""
    if not target:
        raise ApiError("UnknownOperationException", "The request has no X-Amz-Target header.")
    prefix, _, operation_name = target.partition(".")
    service = services.get(prefix)
    if service is None or operation_name not in service.model.operation_names:
        raise ApiError("UnknownOperationException", f"Unknown operation {target!r}.")
    return service, service.model.operation_model(operation_name)


def parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        params = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ApiError("SerializationException", f"The request body is not valid JSON: {error}") from error
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "The request body must be a JSON object.")
    return params


def validate_input(service: Service, operation: OperationModel, params: dict[str, Any]) -> None:
    """Raise the service's validation error, naming each offending field, if ``params`` break the model."""
    shape = operation.input_shape
    if shape is None:
        return
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        problems = report.generate_report().splitlines()
    else:
        problems = list(_constraint_problems(shape, params, ""))
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise service.invalid(f"{count} validation {noun} detected: " + "; ".join(problems))


def _constraint_problems(shape: Shape, value: Any, path: str) -> Iterator[str]:
    """The constraints ParamValidator leaves to the server: maximums, enums and patterns."""
    kind = shape.type_name
    limits = shape.metadata
    if kind == "structure":
        for name, member in shape.members.items():
            if value.get(name) is not None:
                yield from _constraint_problems(member, value[name], f"{path}.{name}" if path else name)
    elif kind == "list":
        if "max" in limits and len(value) > limits["max"]:
            yield _problem(value, path, f"Member must have length less than or equal to {limits['max']}")
        for index, item in enumerate(value):
            yield from _constraint_problems(shape.member, item, f"{path}[{index}]")
    elif kind == "map":
        if "max" in limits and len(value) > limits["max"]:
            yield _problem(value, path, f"Member must have length less than or equal to {limits['max']}")
        for key, item in value.items():
            yield from _constraint_problems(shape.key, key, f"{path}.key")
            yield from _constraint_problems(shape.value, item, f"{path}.{key}")
    elif kind == "string":
        yield from _string_problems(shape, value, path)
    elif kind in ("integer", "long", "float", "double") and "max" in limits and value > limits["max"]:
        yield _problem(value, path, f"Member must have value less than or equal to {limits['max']}")


def _string_problems(shape: Shape, value: str, path: str) -> Iterator[str]:
    limits = shape.metadata
    if "max" in limits and len(value) > limits["max"]:
        yield _problem(value, path, f"Member must have length less than or equal to {limits['max']}")
    if shape.enum and value not in shape.enum:
        yield _problem(value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    pattern = limits.get("pattern")
    compiled = _compiled_pattern(pattern) if pattern else None
    if compiled is not None and compiled.fullmatch(value) is None:
        shown = pattern if pattern.startswith("^") else f"^{pattern}$"
        yield _problem(value, path, f"Member must satisfy regular expression pattern: {shown}")


@functools.cache
def _compiled_pattern(pattern: str) -> re.Pattern[str] | None:
    """The model's (Java) pattern in Python's dialect; None for one Python cannot express."""
    translated = pattern
    for java, python in _UNICODE_CLASSES.items():
        translated = translated.replace(java, python)
    try:
        return re.compile(translated, re.DOTALL)
    except re.error:
        return None


def _problem(value: Any, path: str, constraint: str) -> str:
    shown = value if isinstance(value, str) else json.dumps(value)
    if len(shown) > _SHOWN_VALUE_CHARS:
        shown = shown[:_SHOWN_VALUE_CHARS] + "..."
    return f"Value '{shown}' at '{path}' failed to satisfy constraint: {constraint}"


class OutputShapeError(Exception):
    """A handler built a response its output shape does not allow: a bug in the service, not the client."""


def shape_output(shape: Shape | None, value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as the wire JSON of ``shape``: None members dropped, timestamps as epoch seconds."""
    if shape is None:
        return {}
    return _to_wire(shape, value, shape.name)


def _to_wire(shape: Shape, value: Any, path: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        missing = [name for name in shape.required_members if value.get(name) is None]
        if missing:
            raise OutputShapeError(f"{path} lacks required members {missing}")
        wire = {}
        for name, member_value in value.items():
            if member_value is None:
                continue
            member = shape.members.get(name)
            if member is None:
                raise OutputShapeError(f"{path} has no member {name!r}")
            wire[name] = _to_wire(member, member_value, f"{path}.{name}")
        return wire
    if kind == "list":
        return [_to_wire(shape.member, item, f"{path}[]") for item in value]
    if kind == "map":
        return {key: _to_wire(shape.value, item, f"{path}.{key}") for key, item in value.items()}
    if kind == "timestamp":
        return value.timestamp() if isinstance(value, datetime) else float(value)
    return value


def epoch_seconds(value: Any) -> float:
    """A timestamp from a JSON request (epoch seconds, or an ISO 8601 string botocore allowed) as a float."""
    if isinstance(value, int | float):
        return float(value)
    return botocore.utils.parse_to_aware_datetime(value).timestamp()

"""Validation of admin request bodies: every error names its field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from edge.body import read_json
from edge.errors import GatewayError


@dataclass(frozen=True, slots=True)
class Field:
    """One accepted field: its JSON types, whether required, and bounds for integers/strings."""

    types: tuple[type, ...]
    required: bool = False
    nullable: bool = False
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    float: "a number",
}


def field_error(name: str, message: str) -> GatewayError:
    """A 400 naming the field."""
    return GatewayError(400, f"'{name}': {message}", param=name, code="invalid_field")


def check(payload: Any, spec: dict[str, Field]) -> dict[str, Any]:
    """Validate a JSON object against a spec; unknown fields are refused."""
    if not isinstance(payload, dict):
        raise GatewayError(400, "Request body must be a JSON object.", code="invalid_body")
    for name in payload:
        if name not in spec:
            raise field_error(name, "unknown field")
    for name, rule in spec.items():
        if name not in payload:
            if rule.required:
                raise field_error(name, "required")
            continue
        value = payload[name]
        if value is None:
            if not rule.nullable:
                raise field_error(name, "must not be null")
            continue
        ok = isinstance(value, rule.types) and not (
            isinstance(value, bool) and bool not in rule.types
        )
        if not ok:
            expected = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in rule.types)
            raise field_error(name, f"expected {expected}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if rule.minimum is not None and value < rule.minimum:
                raise field_error(name, f"must be >= {rule.minimum}")
            if rule.maximum is not None and value > rule.maximum:
                raise field_error(name, f"must be <= {rule.maximum}")
        if (
            isinstance(value, str | list)
            and rule.max_length is not None
            and len(value) > rule.max_length
        ):
            unit = "characters" if isinstance(value, str) else "items"
            raise field_error(name, f"longer than {rule.max_length} {unit}")
    return payload


async def body(request: web.Request, spec: dict[str, Field]) -> dict[str, Any]:
    """Read, parse and validate a JSON body."""
    _, payload = await read_json(request)
    return check(payload, spec)

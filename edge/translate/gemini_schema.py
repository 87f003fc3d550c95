"""Gemini's OpenAPI-style `Schema` objects as JSON Schema, for providers that take the latter."""

from __future__ import annotations

from typing import Any

# Gemini-only keys with no JSON Schema meaning.
_DROPPED = frozenset({"propertyOrdering", "example", "nullable"})
# int64 fields, which proto3 JSON may spell as strings.
_INTEGERS = frozenset(
    {"minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"}
)
MAX_DEPTH = 64


def to_json_schema(schema: Any, depth: int = 0) -> Any:
    """Convert recursively: types in lower case, `nullable` as a null type."""
    if depth > MAX_DEPTH or not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROPPED:
            continue
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {k: to_json_schema(v, depth + 1) for k, v in value.items()}
        elif key == "items":
            out["items"] = to_json_schema(value, depth + 1)
        elif key == "anyOf" and isinstance(value, list):
            out["anyOf"] = [to_json_schema(v, depth + 1) for v in value]
        elif key in _INTEGERS and isinstance(value, str) and value.isdigit():
            out[key] = int(value)
        else:
            out[key] = value
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out

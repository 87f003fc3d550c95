"""Helpers shared by the adapters: field checks that name the field, ids, data URLs."""

from __future__ import annotations

import secrets
import time
from typing import Any

from edge.errors import GatewayError


def unsupported(what: str, api: str, param: str | None = None) -> GatewayError:
    """A 400 that names the unsupported feature."""
    return GatewayError(400, f"{what} is not supported {api}", param=param, code="unsupported")


def invalid(param: str, expected: str) -> GatewayError:
    """A 400 naming the field and what it should have been."""
    return GatewayError(
        400, f"Invalid '{param}': expected {expected}.", param=param, code="invalid_type"
    )


def opt_str(obj: dict[str, Any], name: str, where: str = "") -> str | None:
    """An optional string field."""
    value = obj.get(name)
    if value is None or isinstance(value, str):
        return value
    raise invalid(f"{where}{name}", "a string")


def opt_int(obj: dict[str, Any], name: str, where: str = "", minimum: int = 0) -> int | None:
    """An optional integer field with a lower bound."""
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise invalid(f"{where}{name}", f"an integer >= {minimum}")
    return value


def opt_num(obj: dict[str, Any], name: str, where: str = "") -> float | None:
    """An optional number field."""
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"{where}{name}", "a number")
    return float(value)


def opt_bool(obj: dict[str, Any], name: str, where: str = "") -> bool | None:
    """An optional boolean field."""
    value = obj.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise invalid(f"{where}{name}", "a boolean")


def opt_dict(obj: dict[str, Any], name: str, where: str = "") -> dict[str, Any] | None:
    """An optional object field."""
    value = obj.get(name)
    if value is None or isinstance(value, dict):
        return value
    raise invalid(f"{where}{name}", "an object")


def opt_list(obj: dict[str, Any], name: str, where: str = "") -> list[Any] | None:
    """An optional array field."""
    value = obj.get(name)
    if value is None or isinstance(value, list):
        return value
    raise invalid(f"{where}{name}", "an array")


def split_data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a base64 data: URL, else None."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        return None
    return header[: -len(";base64")] or "application/octet-stream", data


def new_id(prefix: str) -> str:
    """A fresh opaque id with the API's conventional prefix."""
    return f"{prefix}{secrets.token_hex(12)}"


def now() -> int:
    """Unix seconds."""
    return int(time.time())

"""Small edits to a JSON body without re-encoding it, when the edit is unambiguous."""

from __future__ import annotations

import re
from typing import Any

import orjson


def set_model(raw: bytes, payload: dict[str, Any], model: str) -> bytes:
    """The body with its top-level `model` replaced; bytes untouched when it already matches."""
    current = payload.get("model")
    if current == model:
        return raw
    if isinstance(current, str):
        pattern = re.compile(rb'"model"\s*:\s*' + re.escape(orjson.dumps(current)))
        if len(pattern.findall(raw)) == 1:
            # One literal occurrence is the top-level field, unless the top-level one was written
            # with escapes and this is a nested copy: with any backslash in the body, check.
            edited = pattern.sub(lambda _: b'"model":' + orjson.dumps(model), raw, count=1)
            if b"\\" not in raw or orjson.loads(edited).get("model") == model:
                return edited
    return orjson.dumps({**payload, "model": model})


def add_field(raw: bytes, payload: dict[str, Any], name: str, value: Any) -> bytes:
    """The body with one more top-level field, appended before the closing brace."""
    if name in payload:
        return orjson.dumps({**payload, name: value})
    end = raw.rstrip().rfind(b"}")
    separator = b"," if payload else b""
    return raw[:end] + separator + orjson.dumps(name) + b":" + orjson.dumps(value) + raw[end:]

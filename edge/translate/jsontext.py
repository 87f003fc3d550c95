"""Tool arguments and results as JSON text and objects, and system turns, for every adapter."""

from __future__ import annotations

from typing import Any

import orjson

from edge.translate import neutral as n
from edge.translate.common import unsupported


def json_text(value: Any) -> str:
    """Compact JSON text."""
    return orjson.dumps(value).decode()


def json_object(text: str) -> dict[str, Any] | None:
    """Argument text as an object (empty text is `{}`), or None when it is not one."""
    try:
        value = orjson.loads(text) if text.strip() else {}
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def tool_input(arguments: str) -> dict[str, Any]:
    """A call's arguments as the object Messages and Gemini carry (non-objects are wrapped)."""
    value = json_object(arguments)
    return value if value is not None else {"arguments": arguments}


def split_system(items: list[n.Item], api: str) -> tuple[list[str], list[n.Item]]:
    """System and developer texts, and the conversation without them (`api` names the
    provider in the error when a system turn holds more than text)."""
    system: list[str] = []
    rest: list[n.Item] = []
    for item in items:
        if isinstance(item, n.Message) and item.role in ("system", "developer"):
            if any(not isinstance(p, n.TextPart) for p in item.parts):
                raise unsupported("Images or files in a system message", api, "system")
            system.append(item.text)
        else:
            rest.append(item)
    return system, rest

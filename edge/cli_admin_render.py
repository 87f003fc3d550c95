"""Plain-text tables for `edge admin` answers."""

from __future__ import annotations

import time
from typing import Any

# The columns each kind of list shows, in order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "accounts": ("id", "plan", "blocked", "blocked_reason", "created_at"),
    "branches": ("id", "parent", "created_at"),
    "keys": ("id", "account", "name", "branch", "plan", "scopes", "revoked", "created_at"),
    "plans": ("name", "description", "limits"),
    "audit": ("id", "at", "actor", "action", "target", "details"),
}
LIMIT_COLUMNS = ("scope", "name", "limit", "used", "remaining", "window_seconds", "resets_in")
DAY_COLUMNS = ("day", "requests", "input_tokens", "output_tokens", "cost_micros")


def timestamp(seconds: float) -> str:
    """Epoch seconds as ISO-8601 UTC to the second, one word wide: 2026-12-04T17:05:03Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _is_time(name: str, value: Any) -> bool:
    """Whether a field holds a moment (epoch seconds): `at`, `*_at`, `*_until`."""
    named = name == "at" or name.endswith(("_at", "_until"))
    return named and isinstance(value, int | float) and not isinstance(value, bool)


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if _is_time(name, value):
        return timestamp(value)
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    """Rows as aligned columns under a header."""
    cells = [[_cell(c, row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _pairs(obj: dict[str, Any]) -> str:
    width = max((len(k) for k in obj), default=0)
    return "\n".join(f"{k.ljust(width)}  {_cell(k, v)}" for k, v in obj.items())


def _usage(answer: dict[str, Any]) -> str:
    head = _pairs({k: answer.get(k) for k in ("scope", "id", "account", "in_flight")})
    parts = [head]
    if answer.get("limits"):
        parts.append(table(answer["limits"], LIMIT_COLUMNS))
    days = [d for d in answer.get("days", []) if d.get("requests")]
    parts.append(table(days, DAY_COLUMNS) if days else "no usage in the last 30 days")
    return "\n\n".join(parts)


def render(group: str, answer: Any) -> str:
    """An answer as text: a table for lists, key/value lines for one record."""
    if isinstance(answer, dict) and answer.get("object") == "list":
        kind = "branches" if group == "branches" else group
        if not answer["data"]:
            return "(none)"
        columns = COLUMNS.get(kind) or tuple(answer["data"][0])
        return table(answer["data"], columns)
    if group == "usage" and isinstance(answer, dict):
        return _usage(answer)
    if isinstance(answer, dict):
        text = _pairs(answer)
        if "key" in answer and str(answer["key"]).startswith("ek_"):
            text += "\n\nThe secret above is shown once: store it now."
        return text
    return str(answer)

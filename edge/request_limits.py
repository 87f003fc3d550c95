"""What one request may make the gateway parse and walk.

A body's structure is bounded before it is parsed, by counting bytes of its raw text (C speed,
nothing allocated), and each API's arrays are bounded before a translator walks them. The caps
are generous: at or above what every provider documents for one request, so a call a provider
would take is not refused here (only the structure counts can be reached first, by a body
whose strings are dense with brackets or commas: megabytes of them, more than any context
window holds). Every refusal is a 400 that names the cap.
"""

from __future__ import annotations

from typing import Any

from edge.errors import GatewayError

# Levels of nesting in one body. Google's own JSON parser stops at 100 (protobuf's recursion
# limit); orjson writes at most 254, so every object made from a body can be written again.
MAX_DEPTH = 128
# Objects and arrays in one body, counted as `{` and `[` bytes: room for Anthropic's
# 100,000-message maximum with each message a list of blocks. Two million tiny objects
# (27 MiB) cost 600 MB of Python objects; 400,000 cost about 65 MB.
MAX_CONTAINERS = 400_000
# Array elements and object members in one body, counted as `,` bytes (the commas between
# them). Eight million numbers fit in 30 MiB and cost 430 MB once parsed; a million, 53 MB.
MAX_ELEMENTS = 1_000_000
# Messages (Chat, Messages), contents (Gemini) or input items (Responses, chained transcript
# included). Anthropic documents 100,000 messages per request; OpenAI and Google document none.
MAX_ITEMS = 100_000
# Content parts or blocks in one message (tool calls in one Chat message, a tool result's
# blocks, Gemini parts of one Content). Providers cap images per request at 100 (Anthropic),
# 500 (OpenAI) and 3,000 (Gemini).
MAX_PARTS = 10_000
# Tools (Gemini: function declarations, all tools together). OpenAI takes 128, Gemini 128 to
# 512 depending on the model; Anthropic documents no limit.
MAX_TOOLS = 1_000
# Any other list a translator walks: stop sequences (OpenAI takes 4, Gemini 5), response
# modalities.
MAX_LIST = 1_000


def too_long(param: str, limit: int, count: int, counting: str = "") -> GatewayError:
    """The 400 for an array past its cap, naming the field and the cap (`counting`: what the
    count includes besides the field itself)."""
    return GatewayError(
        400,
        f"Invalid '{param}': array too long. Expected an array with at most {limit:,} "
        f"elements (the gateway's cap for one request), but got {count:,}{counting}.",
        param=param,
        code="array_above_max_length",
    )


def capped(value: list[Any], param: str, limit: int) -> list[Any]:
    """`value` itself, or a 400 naming `param` and `limit` when it is longer than `limit`."""
    if len(value) > limit:
        raise too_long(param, limit, len(value))
    return value


def _too_complex(what: str, counted: int, limit: int) -> GatewayError:
    return GatewayError(
        400,
        f"Request body has more {what} than the gateway parses in one request: at most "
        f"{limit:,}, counted {counted:,} (brackets and commas inside strings count too).",
        code="body_too_complex",
    )


def check_structure(raw: bytes) -> None:
    """400 when the JSON text `raw` may hold more objects and arrays than MAX_CONTAINERS or
    more elements than MAX_ELEMENTS, before any of it becomes a Python object.

    Counted on the bytes, so brackets and commas inside strings count too: an upper bound,
    exact for a body whose strings hold none. A body too short to pass a cap is not counted
    (every object or array takes two bytes, every element one)."""
    if len(raw) > 2 * MAX_CONTAINERS:
        containers = raw.count(b"{") + raw.count(b"[")
        if containers > MAX_CONTAINERS:
            raise _too_complex("objects and arrays", containers, MAX_CONTAINERS)
    if len(raw) > MAX_ELEMENTS:
        commas = raw.count(b",")
        if commas > MAX_ELEMENTS:
            raise _too_complex("elements (commas)", commas, MAX_ELEMENTS)


def too_deep() -> GatewayError:
    """The 400 for a body nested past MAX_DEPTH."""
    return GatewayError(
        400,
        f"Request body is nested more than {MAX_DEPTH} levels deep (the gateway's cap).",
        code="body_too_deep",
    )

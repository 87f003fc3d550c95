"""`local/echo`: a deterministic in-process model for checking integrations without a provider.

It answers "Echo: <last user text>", streams it word by word, calls the first offered tool
(with arguments filled from its schema) when tools are offered and the last turn is the
user's, and reports what a tool returned when the last turn is a tool result.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from edge.request_limits import MAX_DEPTH
from edge.translate import neutral as n
from edge.translate.common import new_id, now
from edge.usage import Usage

# An answer without an output cap stops here ("length"), as a provider's default cap would:
# echoing a 30 MiB prompt word by word would be millions of stream events.
MAX_WORDS = 4096


# Words are counted this many characters at a time: a long text is never split into millions
# of strings at once.
_SLICE = 1 << 16


def _words(text: str) -> int:
    count = 0
    for start in range(0, len(text), _SLICE):
        piece = text[start : start + _SLICE]
        count += len(piece.split())
        if start and not piece[0].isspace() and not text[start - 1].isspace():
            count -= 1  # one word across the cut, counted in both slices
    return max(1, count)


def _input_text(req: n.Request) -> str:
    chunks: list[str] = []
    for item in req.items:
        if isinstance(item, n.Message):
            chunks.append(item.text)
        elif isinstance(item, n.ToolResult):
            chunks.append(item.output if isinstance(item.output, str) else "")
        elif isinstance(item, n.ToolCall):
            chunks.append(item.arguments)
    return " ".join(chunks)


def _sample(schema: Any, text: str, depth: int = 0) -> Any:
    """A value that fits a JSON schema, from the prompt's text where a string is wanted; parts
    of the schema that are not what JSON Schema says they are (a `properties` that is not an
    object, a `required` that is not a list of names) are read as absent."""
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return text
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    props = schema.get("properties")
    if kind == "object" or isinstance(props, dict):
        props = props if isinstance(props, dict) else {}
        required = schema.get("required")
        names = required if isinstance(required, list) else list(props)
        return {
            k: _sample(props[k], text, depth + 1)
            for k in names
            if isinstance(k, str) and k in props
        }
    if kind == "array":
        return [_sample(schema.get("items"), text, depth + 1)]
    return {"integer": 1, "number": 1, "boolean": True, "null": None}.get(str(kind), text)


def _plan(req: n.Request) -> tuple[list[n.Item], n.StopReason]:
    last = req.items[-1] if req.items else None
    user_text = next(
        (i.text for i in reversed(req.items) if isinstance(i, n.Message) and i.role == "user"), ""
    )
    if isinstance(last, n.ToolResult):
        output = last.output if isinstance(last.output, str) else "[content]"
        return _text_answer(f"Tool result: {output}", MAX_WORDS)
    wants_tool = req.tools and req.tool_choice != "none"
    if wants_tool and isinstance(last, n.Message) and last.role == "user":
        forced = req.tool_choice if req.tool_choice not in (None, "auto", "required") else None
        tool = next((t for t in req.tools if t.name == forced), req.tools[0])
        args = orjson.dumps(_sample(tool.parameters or {"type": "object"}, user_text)).decode()
        return [n.ToolCall(call_id=new_id("call_"), name=tool.name, arguments=args)], "tool_calls"
    fmt = req.response_format
    if fmt is not None and fmt.type == "json_schema" and fmt.schema is not None:
        text = orjson.dumps(_sample(fmt.schema, user_text)).decode()
    elif fmt is not None and fmt.type == "json_object":
        text = orjson.dumps({"echo": user_text}).decode()
    else:
        text = f"Echo: {user_text}"
    return _text_answer(text, min(req.max_output_tokens or MAX_WORDS, MAX_WORDS))


def _text_answer(text: str, limit: int) -> tuple[list[n.Item], n.StopReason]:
    """One text message, cut after `limit` words ("length")."""
    if _words(text) > limit:
        words = text.split(maxsplit=limit)[:limit]
        return [n.Message(role="assistant", parts=[n.TextPart(" ".join(words))])], "length"
    return [n.Message(role="assistant", parts=[n.TextPart(text)])], "stop"


def _usage(req: n.Request, items: list[n.Item]) -> Usage:
    out_text = " ".join(
        i.text if isinstance(i, n.Message) else i.arguments if isinstance(i, n.ToolCall) else ""
        for i in items
    )
    return Usage(input_tokens=_words(_input_text(req)), output_tokens=_words(out_text))


def complete(req: n.Request) -> n.Response:
    """A whole answer."""
    items, stop = _plan(req)
    return n.Response(
        id=new_id("echo-"),
        model="local/echo",
        items=items,
        stop_reason=stop,
        usage=_usage(req, items),
        created=now(),
    )


async def stream(req: n.Request, delay: float = 0.0) -> AsyncIterator[n.Event]:
    """The same answer as events: text word by word, a tool call's arguments in two pieces."""
    resp = complete(req)
    yield n.Start(id=resp.id, model=resp.model, created=resp.created)
    for index, item in enumerate(resp.items):
        if isinstance(item, n.Message):
            words = item.text.split(" ", MAX_WORDS)  # no more events than words answered
            for i, word in enumerate(words):
                yield n.TextDelta(word if i == 0 else " " + word)
                if delay:
                    await asyncio.sleep(delay)
        elif isinstance(item, n.ToolCall):
            yield n.ToolCallStart(index=index, call_id=item.call_id, name=item.name)
            half = len(item.arguments) // 2
            yield n.ToolCallDelta(index=index, arguments=item.arguments[:half])
            yield n.ToolCallDelta(index=index, arguments=item.arguments[half:])
    yield n.Finish(stop_reason=resp.stop_reason, usage=resp.usage)

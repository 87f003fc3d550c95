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

from edge.translate import neutral as n
from edge.translate.common import new_id, now
from edge.usage import Usage


def _words(text: str) -> int:
    return max(1, len(text.split()))


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


def _sample(schema: Any, text: str) -> Any:
    """A value that fits a JSON schema, from the prompt's text where a string is wanted."""
    if not isinstance(schema, dict):
        return text
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = schema.get("required", list(props))
        return {k: _sample(props.get(k), text) for k in required if k in props}
    if kind == "array":
        return [_sample(schema.get("items"), text)]
    return {"integer": 1, "number": 1, "boolean": True, "null": None}.get(str(kind), text)


def _plan(req: n.Request) -> tuple[list[n.Item], n.StopReason]:
    last = req.items[-1] if req.items else None
    user_text = next(
        (i.text for i in reversed(req.items) if isinstance(i, n.Message) and i.role == "user"), ""
    )
    if isinstance(last, n.ToolResult):
        output = last.output if isinstance(last.output, str) else "[content]"
        return [n.Message(role="assistant", parts=[n.TextPart(f"Tool result: {output}")])], "stop"
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
    limit = req.max_output_tokens
    if limit is not None and _words(text) > limit:
        return [
            n.Message(role="assistant", parts=[n.TextPart(" ".join(text.split()[:limit]))])
        ], "length"
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
            words = item.text.split(" ")
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

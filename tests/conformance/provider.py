"""A fake provider that answers what it is asked, in the provider API it was asked in.

The conformance clients decide for themselves how many calls a scenario takes (a tool round
trip is two, an SDK may add a step), so nothing is queued per call: each request is read
for what a model would act on, as `local/echo` does, and answered in its own API's shape,
whole or streamed:

- the last turn is a tool result: text naming what the tool returned;
- tools are offered (and not refused) and the last turn is the user's: a call of the first
  (or the forced) tool, with arguments filled from its schema and the user's text;
- a JSON schema is asked for: an object that fits it, strings filled with the user's text;
- otherwise text: `<api> says: <the user's last text>`.

Every request is still recorded in `requests` (the FakeUpstream's), for the tests to check
what reached the provider.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.support.fake_upstream import FakeUpstream, Scenario

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}{next(_ids):06d}conf"


@dataclass
class Asked:
    """What a request asks of the model, read from any provider API."""

    user_text: str = ""
    tool_result: str | None = None  # the last turn is a tool's result (its text)
    tools: list[tuple[str, Any]] = field(default_factory=list)  # (name, JSON schema)
    forced: str | None = None  # a tool the caller requires by name
    no_tools: bool = False  # tool choice "none"
    schema: Any = None  # a JSON schema the answer must fit


@dataclass
class Plan:
    """The answer: text, or one tool call (name, arguments as JSON text)."""

    text: str | None = None
    call: tuple[str, str] | None = None


def _text_of(content: Any) -> str:
    """The text of a message content in any API: a string or a list of text-bearing parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            _text_of(p.get("text", p.get("content", ""))) for p in content if isinstance(p, dict)
        )
    return ""


def sample(schema: Any, text: str, depth: int = 0) -> Any:
    """A value that fits a JSON schema, the user's text wherever a string is wanted."""
    if not isinstance(schema, dict) or depth > 16:
        return text
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for union in ("anyOf", "oneOf"):
        if isinstance(schema.get(union), list) and schema[union]:
            return sample(schema[union][0], text, depth + 1)
    props = schema.get("properties")
    if kind in ("object", "OBJECT") or isinstance(props, dict):
        props = props if isinstance(props, dict) else {}
        return {k: sample(v, text, depth + 1) for k, v in props.items()}
    if kind in ("array", "ARRAY"):
        return [sample(schema.get("items"), text, depth + 1)]
    numbers = {"integer": 7, "INTEGER": 7, "number": 7, "NUMBER": 7}
    if kind in numbers:
        return numbers[str(kind)]
    if kind in ("boolean", "BOOLEAN"):
        return True
    return text


def plan(api: str, asked: Asked) -> Plan:
    """What a model would answer."""
    if asked.tool_result is not None:
        return Plan(text=f"{api} heard the tool: {asked.tool_result}")
    if asked.tools and not asked.no_tools:
        name, schema = next((t for t in asked.tools if t[0] == asked.forced), asked.tools[0])
        return Plan(call=(name, orjson.dumps(sample(schema or {}, asked.user_text)).decode()))
    if asked.schema is not None:
        return Plan(text=orjson.dumps(sample(asked.schema, asked.user_text)).decode())
    return Plan(text=f"{api} says: {asked.user_text}")


# Reading requests ------------------------------------------------------------------------


def read_responses(body: dict[str, Any]) -> Asked:
    """An OpenAI Responses request."""
    asked = Asked()
    items = body.get("input")
    items = [{"role": "user", "content": items}] if isinstance(items, str) else items or []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") == "user":
            asked.user_text, asked.tool_result = _text_of(item.get("content")), None
        elif kind == "function_call_output":
            asked.tool_result = _text_of(item.get("output"))
        elif kind in ("message", "function_call"):
            asked.tool_result = None
    asked.tools = [
        (t["name"], t.get("parameters"))
        for t in body.get("tools") or []
        if t.get("type") == "function"
    ]
    choice = body.get("tool_choice")
    asked.no_tools = choice == "none"
    asked.forced = choice.get("name") if isinstance(choice, dict) else None
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        asked.schema = fmt.get("schema")
    return asked


def read_chat(body: dict[str, Any]) -> Asked:
    """An OpenAI Chat Completions request."""
    asked = Asked()
    for message in body.get("messages") or []:
        role = message.get("role")
        if role == "user":
            asked.user_text, asked.tool_result = _text_of(message.get("content")), None
        elif role == "tool":
            asked.tool_result = _text_of(message.get("content"))
        elif role == "assistant":
            asked.tool_result = None
    asked.tools = [
        (t["function"]["name"], t["function"].get("parameters"))
        for t in body.get("tools") or []
        if t.get("type") == "function"
    ]
    choice = body.get("tool_choice")
    asked.no_tools = choice == "none"
    asked.forced = choice["function"]["name"] if isinstance(choice, dict) else None
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        asked.schema = (fmt.get("json_schema") or {}).get("schema")
    return asked


def read_messages(body: dict[str, Any]) -> Asked:
    """An Anthropic Messages request."""
    asked = Asked()
    for message in body.get("messages") or []:
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        if message.get("role") != "user":
            asked.tool_result = None
            continue
        results = [b for b in blocks if b.get("type") == "tool_result"]
        if results:
            asked.tool_result = _text_of(results[-1].get("content"))
        else:
            asked.user_text, asked.tool_result = _text_of(blocks), None
    asked.tools = [
        (t["name"], t.get("input_schema")) for t in body.get("tools") or [] if "name" in t
    ]
    choice = body.get("tool_choice") or {}
    asked.no_tools = choice.get("type") == "none"
    asked.forced = choice.get("name") if choice.get("type") == "tool" else None
    fmt = body.get("output_format") or (body.get("output_config") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        asked.schema = fmt.get("schema")
    return asked


def read_gemini(body: dict[str, Any]) -> Asked:
    """A Gemini generateContent request."""
    asked = Asked()
    for content in body.get("contents") or []:
        parts = content.get("parts") or []
        responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
        if content.get("role") == "model":
            asked.tool_result = None
        elif responses:
            asked.tool_result = orjson.dumps(responses[-1].get("response")).decode()
        else:
            asked.user_text, asked.tool_result = _text_of(parts), None
    for tool in body.get("tools") or []:
        for decl in tool.get("functionDeclarations") or []:
            schema = decl.get("parametersJsonSchema", decl.get("parameters"))
            asked.tools.append((decl["name"], schema))
    calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    asked.no_tools = calling.get("mode") == "NONE"
    allowed = calling.get("allowedFunctionNames") or []
    asked.forced = allowed[0] if calling.get("mode") == "ANY" and allowed else None
    config = body.get("generationConfig") or {}
    if config.get("responseMimeType") == "application/json":
        asked.schema = config.get("responseJsonSchema", config.get("responseSchema", {}))
    return asked


def transcript(path: str, body: Any) -> list[tuple[str, str]]:
    """(user or assistant, text) of each message turn a provider request holds, parts joined;
    tool calls and results are left out."""
    out: list[tuple[str, str]] = []
    if path.endswith("/responses"):
        items = body.get("input")
        items = [{"role": "user", "content": items}] if isinstance(items, str) else items
        for item in items:
            if item.get("type", "message") == "message" and item.get("role") in (
                "user",
                "assistant",
            ):
                out.append((item["role"], _text_of(item.get("content"))))
    elif path.endswith(("/chat/completions", "/messages")):
        for message in body.get("messages") or []:
            content = message.get("content")
            text = (
                _text_of([p for p in content if p.get("type") == "text"])
                if isinstance(content, list)
                else _text_of(content)
            )
            if message.get("role") in ("user", "assistant") and text:
                out.append((message["role"], text))
    else:
        for content in body.get("contents") or []:
            text = "".join(p["text"] for p in content.get("parts") or [] if "text" in p)
            if text:
                out.append(("assistant" if content.get("role") == "model" else "user", text))
    return out


# Writing answers ---------------------------------------------------------------------------


def _halves(text: str) -> list[str]:
    cut = len(text) // 2
    return [text[:cut], text[cut:]] if cut else [text]


def _sse(events: list[dict[str, Any]], named: bool) -> list[bytes]:
    out = []
    for event in events:
        head = f"event: {event['type']}\n" if named else ""
        out.append(head.encode() + b"data: " + orjson.dumps(event) + b"\n\n")
    return out


def responses_answer(body: dict[str, Any], p: Plan, stream: bool) -> Scenario:
    """An OpenAI Responses answer."""
    rid, created = _id("resp_"), int(time.time())
    if p.call is not None:
        name, args = p.call
        item: dict[str, Any] = {
            "type": "function_call",
            "id": _id("fc_"),
            "call_id": _id("call_"),
            "name": name,
            "arguments": args,
            "status": "completed",
        }
    else:
        item = {
            "type": "message",
            "id": _id("msg_"),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": p.text or "", "annotations": []}],
        }
    usage = {
        "input_tokens": 11,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 16,
    }
    # A reasoning model's answer opens with a reasoning item (gpt-5 always sends one), and the
    # AI SDK sends a reasoning model's turns back by reference only when it has one.
    reasoning = {"type": "reasoning", "id": _id("rs_"), "summary": []}
    whole = {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": "completed",
        "model": body.get("model"),
        "output": [reasoning, item],
        "usage": usage,
    }
    if not stream:
        return Scenario(body=orjson.dumps(whole))
    started = {**whole, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
    ]
    events += [
        {"type": "response.output_item.added", "output_index": 0, "item": reasoning},
        {"type": "response.output_item.done", "output_index": 0, "item": reasoning},
    ]
    base = {"output_index": 1, "item_id": item["id"]}
    if p.call is not None:
        events.append(
            {
                "type": "response.output_item.added",
                "output_index": 1,
                "item": {**item, "arguments": "", "status": "in_progress"},
            }
        )
        for piece in _halves(item["arguments"]):
            events.append(
                {"type": "response.function_call_arguments.delta", **base, "delta": piece}
            )
        events.append(
            {
                "type": "response.function_call_arguments.done",
                **base,
                "arguments": item["arguments"],
            }
        )
    else:
        text = p.text or ""
        part = {"type": "output_text", "text": "", "annotations": []}
        events.append(
            {
                "type": "response.output_item.added",
                "output_index": 1,
                "item": {**item, "content": [], "status": "in_progress"},
            }
        )
        events.append(
            {"type": "response.content_part.added", **base, "content_index": 0, "part": part}
        )
        for piece in _halves(text):
            events.append(
                {"type": "response.output_text.delta", **base, "content_index": 0, "delta": piece}
            )
        events.append(
            {"type": "response.output_text.done", **base, "content_index": 0, "text": text}
        )
        events.append(
            {
                "type": "response.content_part.done",
                **base,
                "content_index": 0,
                "part": {**part, "text": text},
            }
        )
    events.append({"type": "response.output_item.done", "output_index": 1, "item": item})
    events.append({"type": "response.completed", "response": whole})
    for n, event in enumerate(events):
        event["sequence_number"] = n
    return Scenario(frames=_sse(events, named=True))


def chat_answer(body: dict[str, Any], p: Plan, stream: bool) -> Scenario:
    """An OpenAI Chat Completions answer."""
    cid, created, model = _id("chatcmpl-"), int(time.time()), body.get("model")
    usage = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
    finish = "tool_calls" if p.call is not None else "stop"
    call: dict[str, Any] | None = None
    if p.call is not None:
        call = {
            "id": _id("call_"),
            "type": "function",
            "function": {"name": p.call[0], "arguments": p.call[1]},
        }
    if not stream:
        message: dict[str, Any] = {"role": "assistant", "content": p.text}
        if call is not None:
            message["tool_calls"] = [call]
        choice = {"index": 0, "message": message, "finish_reason": finish}
        return Scenario(
            body=orjson.dumps(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [choice],
                    "usage": usage,
                }
            )
        )
    head = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    if call is not None:
        first, *rest = _halves(call["function"]["arguments"])
        deltas.append(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": first},
                    }
                ]
            }
        )
        deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": r}}]} for r in rest]
    else:
        deltas += [{"content": piece} for piece in _halves(p.text or "")]
    chunks = [
        {**head, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
    ]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    chunks.append({**head, "choices": [], "usage": usage})
    frames = [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks]
    return Scenario(frames=[*frames, b"data: [DONE]\n\n"])


def messages_answer(body: dict[str, Any], p: Plan, stream: bool) -> Scenario:
    """An Anthropic Messages answer."""
    mid, model = _id("msg_"), body.get("model")
    if p.call is not None:
        block: dict[str, Any] = {
            "type": "tool_use",
            "id": _id("toolu_"),
            "name": p.call[0],
            "input": orjson.loads(p.call[1]),
        }
        stop = "tool_use"
    else:
        block, stop = {"type": "text", "text": p.text or ""}, "end_turn"
    usage = {"input_tokens": 11, "output_tokens": 5}
    whole = {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }
    if not stream:
        return Scenario(body=orjson.dumps(whole))
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                **whole,
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 11, "output_tokens": 1},
            },
        },
    ]
    if p.call is not None:
        events.append(
            {"type": "content_block_start", "index": 0, "content_block": {**block, "input": {}}}
        )
        for piece in _halves(p.call[1]):
            events.append(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": piece},
                }
            )
    else:
        events.append(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        )
        for piece in _halves(p.text or ""):
            events.append(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                }
            )
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
        {"type": "message_stop"},
    ]
    return Scenario(frames=_sse(events, named=True))


def gemini_answer(body: dict[str, Any], p: Plan, stream: bool, model: str) -> Scenario:
    """A Gemini generateContent answer (a stream is `alt=sse`)."""
    usage = {"promptTokenCount": 11, "candidatesTokenCount": 5, "totalTokenCount": 16}
    rid = _id("gem")
    if p.call is not None:
        parts: list[list[dict[str, Any]]] = [
            [{"functionCall": {"name": p.call[0], "args": orjson.loads(p.call[1])}}]
        ]
    else:
        parts = [[{"text": piece}] for piece in _halves(p.text or "")]

    def chunk(part: list[dict[str, Any]], last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": part}, "index": 0}
        if last:
            candidate["finishReason"] = "STOP"
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": rid,
        }

    if not stream:
        return Scenario(body=orjson.dumps(chunk([x for part in parts for x in part], last=True)))
    chunks = [chunk(part, last=i == len(parts) - 1) for i, part in enumerate(parts)]
    return Scenario(frames=[b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in chunks])


def answer(path: str, body: Any) -> Scenario:
    """The answer to one request, by its path (the provider API) and body."""
    if not isinstance(body, dict):
        return Scenario(status=400, body=b'{"error":{"message":"not a JSON object"}}')
    stream = bool(body.get("stream"))
    if path.endswith("/responses"):
        return responses_answer(body, plan("responses", read_responses(body)), stream)
    if path.endswith("/chat/completions"):
        return chat_answer(body, plan("chat", read_chat(body)), stream)
    if path.endswith("/messages"):
        return messages_answer(body, plan("messages", read_messages(body)), stream)
    if ":generateContent" in path or ":streamGenerateContent" in path:
        model = path.rsplit("/", 1)[-1].split(":", 1)[0]
        stream = ":streamGenerateContent" in path
        return gemini_answer(body, plan("gemini", read_gemini(body)), stream, model)
    return Scenario(status=404, body=b'{"error":{"message":"no such fake route"}}')


class Provider(FakeUpstream):
    """The fake upstream, answering each request by its content (nothing need be queued)."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self.queue:
            raw = await request.read()  # aiohttp keeps the body: the base class reads it again
            self.queue.append(answer(request.path, orjson.loads(raw) if raw else None))
        return await super()._handle(request)

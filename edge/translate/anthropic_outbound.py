"""Neutral requests as Anthropic Messages request bodies."""

from __future__ import annotations

import re
from typing import Any

from edge.translate import neutral as n
from edge.translate.common import invalid, unsupported
from edge.translate.extras import extras_for
from edge.translate.jsontext import json_object, split_system
from edge.translate.reasoning import budget_of
from policies.catalog import Model

API = "by Anthropic models"
DEFAULT_MAX_TOKENS = 8192
MIN_BUDGET = 1024
# The tool that carries a JSON-object answer (Anthropic has no schema-less JSON mode).
JSON_TOOL = "json_response"
_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


def tool_id(call_id: str) -> str:
    """A call id in the alphabet Anthropic accepts (ids from other providers may not be)."""
    return _ID_CHARS.sub("_", call_id) or "toolu_0"


def _source(part: n.ImagePart | n.FilePart) -> dict[str, Any]:
    if part.data is not None:
        if not part.media_type:
            raise invalid("media_type", "the media type of base64 content")
        return {"type": "base64", "media_type": part.media_type, "data": part.data}
    return {"type": "url", "url": part.url}


def _block(part: n.Part) -> dict[str, Any]:
    if isinstance(part, n.TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, n.ImagePart):
        return {"type": "image", "source": _source(part)}
    if part.media_type not in (None, "application/pdf"):
        raise unsupported(f"A file of type {part.media_type!r}", API, "file")
    source = _source(part)
    if source["type"] == "base64":
        source["media_type"] = "application/pdf"
    return {"type": "document", "source": source}


def _tool_result(result: n.ToolResult) -> dict[str, Any]:
    content: str | list[dict[str, Any]]
    if isinstance(result.output, str):
        content = result.output
    else:
        content = [_block(p) for p in result.output]
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": tool_id(result.call_id),
        "content": content,
    }
    if result.is_error:
        block["is_error"] = True
    return block


def _reasoning(item: n.Reasoning) -> dict[str, Any] | None:
    if item.redacted and (item.encrypted or item.signature):
        return {"type": "redacted_thinking", "data": item.encrypted or item.signature}
    if item.signature:
        return {"type": "thinking", "thinking": item.text, "signature": item.signature}
    return None  # unsigned reasoning (from another provider) cannot be replayed to Claude


def _assistant_blocks(item: n.Item) -> list[dict[str, Any]]:
    if isinstance(item, n.Reasoning):
        block = _reasoning(item)
        return [block] if block else []
    if isinstance(item, n.ToolCall):
        args = json_object(item.arguments)
        if args is None:
            raise invalid("tool_calls.arguments", "a JSON object")
        return [{"type": "tool_use", "id": tool_id(item.call_id), "name": item.name, "input": args}]
    assert isinstance(item, n.Message)
    text = item.text or item.refusal or ""
    return [{"type": "text", "text": text}] if text else []


def messages(items: list[n.Item]) -> list[dict[str, Any]]:
    """The conversation as alternating user and assistant turns."""
    turns: list[dict[str, Any]] = []
    for item in items:
        role = "user"
        if isinstance(item, n.ToolResult):
            blocks = [_tool_result(item)]
        elif isinstance(item, n.Message) and item.role == "user":
            blocks = [_block(p) for p in item.parts]
        else:
            role, blocks = "assistant", _assistant_blocks(item)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # Tool results must open their user turn.
        turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return turns


def _thinking_allowed(turns: list[dict[str, Any]]) -> bool:
    """Claude refuses thinking in a tool loop whose assistant turn has no signed thinking block
    (reasoning from clients that cannot carry signatures); thinking is then left off."""
    if len(turns) < 2 or turns[-1]["role"] != "user":
        return True
    if not any(b["type"] == "tool_result" for b in turns[-1]["content"]):
        return True
    first = turns[-2]["content"][0]["type"]
    return first in ("thinking", "redacted_thinking")


def _thinking(req: n.Request, model: Model, turns: list[dict[str, Any]]) -> tuple[int, int]:
    """(max_tokens, thinking budget); a budget of 0 leaves thinking off."""
    budget = budget_of(req.reasoning) if req.reasoning is not None else 0
    forced = req.tool_choice not in (None, "auto", "none")
    if budget and (forced or not _thinking_allowed(turns)):
        budget = 0  # Claude cannot think with a forced tool, nor resume an unsigned tool loop
    if req.max_output_tokens is not None:
        max_tokens = req.max_output_tokens
        if budget:
            budget = min(budget, max_tokens - 1)
    else:
        max_tokens = DEFAULT_MAX_TOKENS + budget
        if model.max_output_tokens is not None:
            max_tokens = min(max_tokens, model.max_output_tokens)
            budget = min(budget, max_tokens - 1)
    return max_tokens, budget if budget >= MIN_BUDGET else 0


def _tools(req: n.Request, json_tool: bool) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for tool in req.tools:
        spec: dict[str, Any] = {
            "name": tool.name,
            "input_schema": tool.parameters or {"type": "object", "properties": {}},
        }
        if tool.description:
            spec["description"] = tool.description
        if tool.strict:
            spec["strict"] = True
        tools.append(spec)
    for hosted in req.hosted_tools:
        tools.append({"type": hosted.type, **hosted.config})
    if json_tool:
        tools.append(
            {
                "name": JSON_TOOL,
                "description": "Respond with a JSON object.",
                "input_schema": {"type": "object", "additionalProperties": True},
            }
        )
    return tools


def _tool_choice(req: n.Request, json_tool: bool) -> dict[str, Any] | None:
    choice: dict[str, Any] | None
    if json_tool:
        choice = {"type": "tool", "name": JSON_TOOL}
    elif req.tool_choice is None:
        choice = None
    elif req.tool_choice in ("auto", "none"):
        choice = {"type": req.tool_choice}
    elif req.tool_choice == "required":
        choice = {"type": "any"}
    else:
        choice = {"type": "tool", "name": req.tool_choice}
    if req.parallel_tool_calls is False and req.tools:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    return choice


def messages_body(req: n.Request, model: Model, stream: bool) -> tuple[dict[str, Any], bool]:
    """The Messages body, and whether a JSON-object answer comes back as the JSON tool's call."""
    system, rest = split_system(req.items, API)
    turns = messages(rest)
    if not turns:
        raise invalid("messages", "at least one user or assistant message")
    fmt = req.response_format
    json_tool = fmt is not None and fmt.type == "json_object"
    max_tokens, budget = _thinking(req, model, turns)
    if budget and json_tool:
        budget = 0  # the JSON tool is forced, which thinking does not allow
    body: dict[str, Any] = {"model": req.model, "max_tokens": max_tokens, "messages": turns}
    if system:
        body["system"] = "\n\n".join(system)
    if stream:
        body["stream"] = True
    extras = extras_for(req, "messages")
    if budget:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    else:
        # Claude only allows sampling settings without thinking.
        for key, value in (("temperature", req.temperature), ("top_p", req.top_p)):
            if value is not None:
                body[key] = value
        body.update(extras)
    if req.stop:
        body["stop_sequences"] = req.stop
    tools = _tools(req, json_tool)
    if tools:
        body["tools"] = tools
    choice = _tool_choice(req, json_tool)
    if choice is not None and (tools or choice["type"] == "none"):
        body["tool_choice"] = choice
    if fmt is not None and fmt.type == "json_schema":
        body["output_config"] = {"format": {"type": "json_schema", "schema": fmt.schema or {}}}
    if req.user:
        body["metadata"] = {"user_id": req.user}
    return body, json_tool

"""Anthropic Messages requests to the neutral model."""

from __future__ import annotations

from typing import Any

from edge.request_limits import MAX_ITEMS, MAX_LIST, MAX_PARTS, MAX_TOOLS, capped
from edge.translate import neutral as n
from edge.translate.common import (
    invalid,
    opt_dict,
    opt_int,
    opt_list,
    opt_num,
    opt_str,
    unsupported,
)
from edge.translate.jsontext import json_text
from edge.translate.reasoning import effort_for_budget

API = "by the Messages API for this model"
# Top-level fields only Anthropic itself can honour.
_ANTHROPIC_ONLY = ("container", "mcp_servers", "context_management", "inference_geo")


def _source(block: dict[str, Any], at: str) -> tuple[str | None, str | None, str | None]:
    """(url, base64 data, media type) of an image or document source."""
    source = block.get("source")
    if not isinstance(source, dict):
        raise invalid(f"{at}.source", "an object")
    kind = source.get("type")
    if kind == "base64":
        data = source.get("data")
        if not isinstance(data, str):
            raise invalid(f"{at}.source.data", "base64 text")
        return None, data, opt_str(source, "media_type", f"{at}.source.")
    if kind == "url":
        url = source.get("url")
        if not isinstance(url, str):
            raise invalid(f"{at}.source.url", "a string")
        return url, None, None
    raise unsupported(f"A {kind!r} source", API, f"{at}.source.type")


def _user_block(block: Any, at: str) -> n.Part:
    if not isinstance(block, dict):
        raise invalid(at, "a content block")
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise invalid(f"{at}.text", "a string")
        return n.TextPart(text)
    if kind == "image":
        url, data, media = _source(block, at)
        return n.ImagePart(url=url, data=data, media_type=media)
    if kind == "document":
        source = block.get("source")
        if isinstance(source, dict) and source.get("type") == "text":
            return n.TextPart(str(source.get("data", "")))
        url, data, media = _source(block, at)
        return n.FilePart(url=url, data=data, media_type=media or "application/pdf")
    raise unsupported(f"Content block type {kind!r}", API, f"{at}.type")


def _tool_result(block: dict[str, Any], at: str) -> n.ToolResult:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        raise invalid(f"{at}.tool_use_id", "a string")
    content = block.get("content", "")
    output: str | list[n.Part]
    if isinstance(content, str):
        output = content
    elif isinstance(content, list):
        parts = [
            _user_block(b, f"{at}.content[{i}]")
            for i, b in enumerate(capped(content, f"{at}.content", MAX_PARTS))
        ]
        texts = [p.text for p in parts if isinstance(p, n.TextPart)]
        output = "".join(texts) if len(texts) == len(parts) else parts
    else:
        raise invalid(f"{at}.content", "a string or an array of content blocks")
    is_error = block.get("is_error")
    if is_error is not None and not isinstance(is_error, bool):
        raise invalid(f"{at}.is_error", "a boolean")
    return n.ToolResult(call_id=call_id, output=output, is_error=is_error is True)


def _assistant_block(block: dict[str, Any], at: str) -> n.Item:
    kind = block.get("type")
    if kind == "text":
        return n.Message(role="assistant", parts=[n.TextPart(str(block.get("text", "")))])
    if kind == "tool_use":
        name, call_id = block.get("name"), block.get("id")
        if not isinstance(name, str) or not isinstance(call_id, str):
            raise invalid(f"{at}", "a tool_use block with an id and a name")
        args = json_text(block.get("input") or {})
        return n.ToolCall(call_id=call_id, name=name, arguments=args)
    if kind == "thinking":
        return n.Reasoning(text=str(block.get("thinking", "")), signature=block.get("signature"))
    if kind == "redacted_thinking":
        return n.Reasoning(redacted=True, encrypted=block.get("data"))
    raise unsupported(f"Content block type {kind!r}", API, f"{at}.type")


def _message(msg: Any, i: int) -> list[n.Item]:
    at = f"messages[{i}]"
    if not isinstance(msg, dict):
        raise invalid(at, "a message object")
    role = msg.get("role")
    if role not in ("user", "assistant"):
        raise invalid(f"{at}.role", "'user' or 'assistant'")
    content = msg.get("content")
    if isinstance(content, str):
        return [n.Message(role=role, parts=[n.TextPart(content)])]
    if not isinstance(content, list):
        raise invalid(f"{at}.content", "a string or an array of content blocks")
    items: list[n.Item] = []
    parts: list[n.Part] = []
    for j, block in enumerate(capped(content, f"{at}.content", MAX_PARTS)):
        where = f"{at}.content[{j}]"
        if not isinstance(block, dict):
            raise invalid(where, "a content block")
        if role == "assistant":
            items.append(_assistant_block(block, where))
        elif block.get("type") == "tool_result":
            items.append(_tool_result(block, where))
        else:
            parts.append(_user_block(block, where))
    if parts:
        items.append(n.Message(role="user", parts=parts))
    return items


def _system(raw: Any) -> list[n.Item]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [n.Message(role="system", parts=[n.TextPart(raw)])]
    if not isinstance(raw, list):
        raise invalid("system", "a string or an array of text blocks")
    texts: list[n.Part] = []
    for i, block in enumerate(capped(raw, "system", MAX_PARTS)):
        if not isinstance(block, dict) or not isinstance(block.get("text"), str):
            raise invalid(f"system[{i}]", "a text block")
        texts.append(n.TextPart(block["text"]))
    return [n.Message(role="system", parts=texts)]


def _tools(raw: list[Any]) -> tuple[list[n.ToolSpec], list[n.HostedTool]]:
    tools: list[n.ToolSpec] = []
    hosted: list[n.HostedTool] = []
    for i, tool in enumerate(capped(raw, "tools", MAX_TOOLS)):
        if not isinstance(tool, dict):
            raise invalid(f"tools[{i}]", "a tool object")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            config = {k: v for k, v in tool.items() if k != "type"}
            hosted.append(n.HostedTool(type=str(kind), config=config))
            continue
        schema = tool.get("input_schema")
        if not isinstance(tool.get("name"), str) or not isinstance(schema, dict):
            raise invalid(f"tools[{i}]", "a tool with a name and an input_schema object")
        tools.append(
            n.ToolSpec(
                name=tool["name"],
                description=opt_str(tool, "description", f"tools[{i}]."),
                parameters=schema,
                strict=tool.get("strict") if isinstance(tool.get("strict"), bool) else None,
            )
        )
    return tools, hosted


def _tool_choice(raw: dict[str, Any] | None) -> tuple[n.ToolChoice | None, bool | None]:
    if raw is None:
        return None, None
    kind = raw.get("type")
    parallel = False if raw.get("disable_parallel_tool_use") is True else None
    if kind in ("auto", "none"):
        return kind, parallel
    if kind == "any":
        return "required", parallel
    if kind == "tool" and isinstance(raw.get("name"), str):
        return raw["name"], parallel
    raise invalid("tool_choice", "a choice of type auto, any, tool (with a name) or none")


def _reasoning(body: dict[str, Any]) -> n.ReasoningConfig | None:
    thinking = opt_dict(body, "thinking")
    effort = (opt_dict(body, "output_config") or {}).get("effort")
    if thinking is None or thinking.get("type") == "disabled":
        return n.ReasoningConfig(effort=effort) if effort in ("low", "medium", "high") else None
    if thinking.get("type") == "adaptive":
        return n.ReasoningConfig(effort=effort if effort in ("low", "medium", "high") else "medium")
    budget = opt_int(thinking, "budget_tokens", "thinking.", minimum=1)
    if thinking.get("type") != "enabled" or budget is None:
        raise invalid("thinking", "{'type': 'enabled', 'budget_tokens': N} or {'type': 'disabled'}")
    return n.ReasoningConfig(effort=effort_for_budget(budget), budget_tokens=budget)


def _response_format(body: dict[str, Any]) -> n.ResponseFormat | None:
    fmt = (opt_dict(body, "output_config") or {}).get("format") or body.get("output_format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise invalid("output_config.format", "{'type': 'json_schema', 'schema': {...}}")
    if not isinstance(fmt.get("schema"), dict):
        raise invalid("output_config.format.schema", "a JSON schema object")
    return n.ResponseFormat(type="json_schema", name="response", schema=fmt["schema"])


def parse_messages_request(body: dict[str, Any]) -> n.Request:
    """Validate a Messages body and convert it; 400 naming the field when it is wrong."""
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise invalid("messages", "a non-empty array of messages")
    capped(raw_messages, "messages", MAX_ITEMS)
    max_tokens = opt_int(body, "max_tokens", minimum=1)
    if max_tokens is None:
        raise invalid("max_tokens", "an integer >= 1")
    for name in _ANTHROPIC_ONLY:
        if body.get(name) is not None:
            raise unsupported(f"'{name}'", API, name)
    items = _system(body.get("system"))
    for i, msg in enumerate(raw_messages):
        items.extend(_message(msg, i))
    tools, hosted = _tools(opt_list(body, "tools") or [])
    choice, parallel = _tool_choice(opt_dict(body, "tool_choice"))
    stop = capped(opt_list(body, "stop_sequences") or [], "stop_sequences", MAX_LIST)
    metadata = opt_dict(body, "metadata") or {}
    top_k = opt_int(body, "top_k", minimum=1)
    return n.Request(
        model=str(body.get("model")),
        items=items,
        tools=tools,
        hosted_tools=hosted,
        tool_choice=choice,
        parallel_tool_calls=parallel,
        max_output_tokens=max_tokens,
        temperature=opt_num(body, "temperature"),
        top_p=opt_num(body, "top_p"),
        stop=[str(s) for s in stop],
        response_format=_response_format(body),
        reasoning=_reasoning(body),
        stream=body.get("stream") is True,
        user=metadata.get("user_id") if isinstance(metadata.get("user_id"), str) else None,
        extra={"top_k": top_k} if top_k is not None else {},
    )

"""Chat Completions requests to the neutral model."""

from __future__ import annotations

from typing import Any

from edge.request_limits import MAX_ITEMS, MAX_LIST, MAX_PARTS, MAX_TOOLS, capped
from edge.translate import neutral as n
from edge.translate.common import (
    invalid,
    opt_bool,
    opt_dict,
    opt_int,
    opt_list,
    opt_num,
    opt_str,
    split_data_url,
    unsupported,
)

API = "by the Chat Completions API"
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


def _parts(content: Any, where: str) -> list[n.Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [n.TextPart(content)]
    if not isinstance(content, list):
        raise invalid(where, "a string or an array of content parts")
    parts: list[n.Part] = []
    for i, part in enumerate(capped(content, where, MAX_PARTS)):
        at = f"{where}[{i}]"
        if not isinstance(part, dict):
            raise invalid(at, "a content part object")
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise invalid(f"{at}.text", "a string")
            parts.append(n.TextPart(text))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise invalid(f"{at}.image_url.url", "a string")
            detail = image.get("detail") if isinstance(image, dict) else None
            data = split_data_url(url)
            if data:
                parts.append(n.ImagePart(data=data[1], media_type=data[0], detail=detail))
            else:
                parts.append(n.ImagePart(url=url, detail=detail))
        elif kind == "file":
            file = part.get("file")
            if not isinstance(file, dict):
                raise invalid(f"{at}.file", "an object")
            if file.get("file_id"):
                raise unsupported("Uploaded file ids ('file_id')", "through this gateway", at)
            data = split_data_url(str(file.get("file_data", "")))
            if data is None:
                raise invalid(f"{at}.file.file_data", "a base64 data: URL")
            parts.append(
                n.FilePart(data=data[1], media_type=data[0], filename=file.get("filename"))
            )
        elif kind == "refusal":
            parts.append(n.TextPart(str(part.get("refusal", ""))))
        else:
            raise unsupported(f"Content part type {kind!r}", API, at)
    return parts


def _tool_result_output(content: Any, where: str) -> str | list[n.Part]:
    if isinstance(content, str):
        return content
    parts = _parts(content, where)
    if all(isinstance(p, n.TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, n.TextPart))
    return parts


def _message(msg: Any, i: int) -> list[n.Item]:
    where = f"messages[{i}]"
    if not isinstance(msg, dict):
        raise invalid(where, "a message object")
    role = msg.get("role")
    if role in ("system", "developer", "user"):
        return [n.Message(role=role, parts=_parts(msg.get("content"), f"{where}.content"))]
    if role in ("tool", "function"):
        call_id = msg.get("tool_call_id") if role == "tool" else msg.get("name")
        if not isinstance(call_id, str):
            raise invalid(f"{where}.tool_call_id", "a string")
        output = _tool_result_output(msg.get("content"), f"{where}.content")
        return [n.ToolResult(call_id=call_id, output=output, name=msg.get("name"))]
    if role != "assistant":
        raise invalid(f"{where}.role", "one of system, developer, user, assistant, tool")
    items: list[n.Item] = []
    reasoning = msg.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        items.append(n.Reasoning(text=reasoning))
    parts = _parts(msg.get("content"), f"{where}.content")
    refusal = opt_str(msg, "refusal", f"{where}.")
    if parts or refusal:
        items.append(n.Message(role="assistant", parts=parts, refusal=refusal))
    calls = opt_list(msg, "tool_calls", f"{where}.") or []
    for j, call in enumerate(capped(calls, f"{where}.tool_calls", MAX_PARTS)):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise invalid(f"{where}.tool_calls[{j}].function.name", "a string")
        args = fn.get("arguments")
        items.append(
            n.ToolCall(
                call_id=str(call.get("id") or f"call_{i}_{j}"),
                name=fn["name"],
                arguments=args if isinstance(args, str) and args else "{}",
            )
        )
    if not items:
        items.append(n.Message(role="assistant", parts=[]))
    return items


def _tools(raw: list[Any]) -> list[n.ToolSpec]:
    tools = []
    for i, tool in enumerate(capped(raw, "tools", MAX_TOOLS)):
        if not isinstance(tool, dict):
            raise invalid(f"tools[{i}]", "a tool object")
        if tool.get("type") != "function":
            raise unsupported(f"Tool type {tool.get('type')!r}", API, f"tools[{i}].type")
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise invalid(f"tools[{i}].function.name", "a string")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise invalid(f"tools[{i}].function.parameters", "a JSON schema object")
        tools.append(
            n.ToolSpec(
                name=fn["name"],
                description=fn.get("description"),
                parameters=params,
                strict=fn.get("strict"),
            )
        )
    return tools


def _tool_choice(raw: Any) -> n.ToolChoice | None:
    if raw is None or raw in ("auto", "none", "required"):
        return raw  # type: ignore[no-any-return]
    if isinstance(raw, dict) and isinstance(raw.get("function"), dict):
        name = raw["function"].get("name")
        if isinstance(name, str):
            return name
    raise invalid("tool_choice", "'auto', 'none', 'required' or a function choice")


def _response_format(raw: dict[str, Any] | None) -> n.ResponseFormat | None:
    if raw is None:
        return None
    kind = raw.get("type")
    if kind in ("text", "json_object"):
        return n.ResponseFormat(type=kind)
    if kind == "json_schema":
        spec = raw.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise invalid("response_format.json_schema.schema", "a JSON schema object")
        return n.ResponseFormat(
            type="json_schema",
            name=spec.get("name"),
            schema=spec["schema"],
            strict=spec.get("strict"),
            description=spec.get("description"),
        )
    raise invalid("response_format.type", "'text', 'json_object' or 'json_schema'")


def parse_chat_request(body: dict[str, Any]) -> n.Request:
    """Validate a Chat Completions body and convert it; 400 naming the field when it is wrong."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "a non-empty array of messages")
    capped(messages, "messages", MAX_ITEMS)
    items: list[n.Item] = []
    for i, msg in enumerate(messages):
        items.extend(_message(msg, i))
    choices = opt_int(body, "n", minimum=1)
    if choices is not None and choices > 1:
        raise unsupported("'n' greater than 1", "for this model", "n")
    effort = opt_str(body, "reasoning_effort")
    if effort is not None and effort not in _EFFORTS:
        raise invalid("reasoning_effort", f"one of {', '.join(_EFFORTS)}")
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str | list):
        raise invalid("stop", "a string or an array of strings")
    if isinstance(stop, list):
        capped(stop, "stop", MAX_LIST)
    max_tokens = opt_int(body, "max_completion_tokens", minimum=1)
    if max_tokens is None:
        max_tokens = opt_int(body, "max_tokens", minimum=1)
    metadata = opt_dict(body, "metadata") or {}
    return n.Request(
        model=str(body.get("model")),
        items=items,
        tools=_tools(opt_list(body, "tools") or []),
        tool_choice=_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=opt_bool(body, "parallel_tool_calls"),
        max_output_tokens=max_tokens,
        temperature=opt_num(body, "temperature"),
        top_p=opt_num(body, "top_p"),
        stop=[stop] if isinstance(stop, str) else [str(s) for s in stop or []],
        response_format=_response_format(opt_dict(body, "response_format")),
        reasoning=n.ReasoningConfig(effort=effort) if effort else None,  # type: ignore[arg-type]
        stream=opt_bool(body, "stream") or False,
        user=opt_str(body, "user"),
        metadata={str(k): str(v) for k, v in metadata.items()},
    )


def wants_stream_usage(body: dict[str, Any]) -> bool:
    """Whether a streaming client asked for the final usage chunk."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True

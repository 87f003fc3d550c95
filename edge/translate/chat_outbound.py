"""Neutral requests as Chat Completions request bodies, for OpenAI-compatible providers."""

from __future__ import annotations

from typing import Any

from edge.translate import neutral as n
from edge.translate.common import unsupported
from edge.translate.extras import extras_for
from edge.translate.reasoning import effort_of
from policies.catalog import Provider

API = "by Chat Completions models"


def openai_models(provider: Provider) -> bool:
    """OpenAI's own models, from OpenAI or Azure: `developer` turns, `max_completion_tokens`."""
    return provider.kind in ("openai", "azure-openai")


def _data_url(media_type: str | None, data: str) -> str:
    return f"data:{media_type or 'application/octet-stream'};base64,{data}"


def _part(part: n.Part) -> dict[str, Any]:
    if isinstance(part, n.TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, n.ImagePart):
        url = part.url if part.url is not None else _data_url(part.media_type, part.data or "")
        image: dict[str, Any] = {"url": url}
        if part.detail:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    if part.data is None:
        raise unsupported("A file given by URL", API, "input")
    file: dict[str, Any] = {"file_data": _data_url(part.media_type, part.data)}
    if part.filename:
        file["filename"] = part.filename
    return {"type": "file", "file": file}


def _content(parts: list[n.Part]) -> str | list[dict[str, Any]]:
    if all(isinstance(p, n.TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, n.TextPart))
    return [_part(p) for p in parts]


def _tool_output(result: n.ToolResult) -> str:
    if isinstance(result.output, str):
        return result.output
    if any(not isinstance(p, n.TextPart) for p in result.output):
        raise unsupported("Images or files inside a tool result", API, "tool_result")
    return "".join(p.text for p in result.output if isinstance(p, n.TextPart))


class _Builder:
    """Accumulates messages, merging an assistant turn's items into one message."""

    def __init__(self, provider: Provider, keep_reasoning_from: int) -> None:
        self.messages: list[dict[str, Any]] = []
        self._assistant: dict[str, Any] | None = None
        self._developer_role = "developer" if openai_models(provider) else "system"
        self._keep_reasoning_from = keep_reasoning_from

    def _turn(self) -> dict[str, Any]:
        if self._assistant is None:
            self._assistant = {"role": "assistant", "content": None}
            self.messages.append(self._assistant)
        return self._assistant

    def add(self, position: int, item: n.Item) -> None:
        """Add the item at `position` of the conversation."""
        if isinstance(item, n.Message) and item.role != "assistant":
            self._assistant = None
            role = self._developer_role if item.role == "developer" else item.role
            content = _content(item.parts)
            if role == "system" and not isinstance(content, str):
                raise unsupported("Images or files in a system message", API, "system")
            self.messages.append({"role": role, "content": content})
        elif isinstance(item, n.ToolResult):
            self._assistant = None
            self.messages.append(
                {"role": "tool", "tool_call_id": item.call_id, "content": _tool_output(item)}
            )
        elif isinstance(item, n.Message):
            turn = self._turn()
            text = item.text or item.refusal or ""
            turn["content"] = (turn["content"] or "") + text
        elif isinstance(item, n.ToolCall):
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments or "{}"},
            }
            self._turn().setdefault("tool_calls", []).append(call)
        elif isinstance(item, n.Reasoning) and item.text and position >= self._keep_reasoning_from:
            turn = self._turn()
            turn["reasoning_content"] = turn.get("reasoning_content", "") + item.text


def _last_user(items: list[n.Item]) -> int:
    for i in range(len(items) - 1, -1, -1):
        item = items[i]
        if isinstance(item, n.Message) and item.role == "user":
            return i
    return 0


def _messages(req: n.Request, provider: Provider) -> list[dict[str, Any]]:
    # Reasoning text goes back only inside the current tool loop (after the last user message):
    # DeepSeek-style servers need it there and refuse it elsewhere.
    builder = _Builder(provider, keep_reasoning_from=_last_user(req.items))
    for position, item in enumerate(req.items):
        builder.add(position, item)
    return builder.messages


def _tool_choice(choice: n.ToolChoice) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def _response_format(fmt: n.ResponseFormat) -> dict[str, Any]:
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    spec: dict[str, Any] = {"name": fmt.name or "response", "schema": fmt.schema or {}}
    if fmt.strict is not None:
        spec["strict"] = fmt.strict
    if fmt.description:
        spec["description"] = fmt.description
    return {"type": "json_schema", "json_schema": spec}


def _tools(req: n.Request) -> list[dict[str, Any]]:
    if req.hosted_tools:
        raise unsupported(f"The hosted tool '{req.hosted_tools[0].type}'", API, "tools")
    tools = []
    for tool in req.tools:
        fn: dict[str, Any] = {
            "name": tool.name,
            "parameters": tool.parameters or {"type": "object", "properties": {}},
        }
        if tool.description:
            fn["description"] = tool.description
        if tool.strict is not None:
            fn["strict"] = tool.strict
        tools.append({"type": "function", "function": fn})
    return tools


def chat_body(req: n.Request, provider: Provider, stream: bool) -> dict[str, Any]:
    """The Chat Completions body for a neutral request."""
    body: dict[str, Any] = {"model": req.model, "messages": _messages(req, provider)}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    tools = _tools(req)
    if tools:
        body["tools"] = tools
    if req.tool_choice is not None and (tools or req.tool_choice == "none"):
        body["tool_choice"] = _tool_choice(req.tool_choice)
    if req.parallel_tool_calls is not None and tools:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.max_output_tokens is not None:
        # OpenAI's reasoning models refuse the legacy name; other servers may only know it.
        key = "max_completion_tokens" if openai_models(provider) else "max_tokens"
        body[key] = req.max_output_tokens
    for key, value in (("temperature", req.temperature), ("top_p", req.top_p)):
        if value is not None:
            body[key] = value
    if req.stop:
        body["stop"] = req.stop
    if req.response_format is not None and req.response_format.type != "text":
        body["response_format"] = _response_format(req.response_format)
    if req.reasoning is not None:
        body["reasoning_effort"] = effort_of(req.reasoning)
    if req.user:
        body["user"] = req.user
    # OpenAI itself has no top_k; compatible servers (vLLM and the like) usually do.
    body.update(extras_for(req, "chat", ("top_k",) if openai_models(provider) else ()))
    return body

"""Neutral requests as Amazon Bedrock Converse request bodies (`/model/{id}/converse`)."""

from __future__ import annotations

import re
from typing import Any

from edge.translate import neutral as n
from edge.translate.common import invalid, unsupported
from edge.translate.jsontext import json_object, split_system
from edge.translate.reasoning import budget_of

API = "by Bedrock models"
MIN_BUDGET = 1024  # Claude's smallest thinking budget, on Bedrock as at Anthropic
DEFAULT_MAX_TOKENS = 8192  # the answer's room beside a thinking budget, as for Anthropic
_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
# Converse names a medium by its format, not its MIME type.
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DOC_FORMATS = {"application/pdf": "pdf", "text/plain": "txt", "text/csv": "csv"}


def tool_use_id(call_id: str) -> str:
    """A call id in the alphabet Converse accepts (ids from other providers may not be)."""
    return _ID_CHARS.sub("_", call_id)[:64] or "tooluse_0"


def _block(part: n.Part, index: int) -> dict[str, Any]:
    if isinstance(part, n.TextPart):
        return {"text": part.text}
    if part.data is None:
        raise unsupported("Content by URL", API, "content")
    if isinstance(part, n.ImagePart):
        image = _IMAGE_FORMATS.get(part.media_type or "")
        if image is None:
            raise unsupported(f"An image of type {part.media_type!r}", API, "image")
        return {"image": {"format": image, "source": {"bytes": part.data}}}
    doc = _DOC_FORMATS.get(part.media_type or "application/pdf")
    if doc is None:
        raise unsupported(f"A file of type {part.media_type!r}", API, "file")
    # Converse wants a name made of letters, digits, spaces, hyphens and brackets.
    name = re.sub(r"[^A-Za-z0-9 ()\[\]-]", "-", part.filename or f"document-{index}")
    return {"document": {"format": doc, "name": name[:200], "source": {"bytes": part.data}}}


def _tool_result(result: n.ToolResult) -> dict[str, Any]:
    if isinstance(result.output, str):
        content: list[dict[str, Any]] = [{"text": result.output}]
    else:
        content = [_block(p, i) for i, p in enumerate(result.output)]
    block: dict[str, Any] = {"toolUseId": tool_use_id(result.call_id), "content": content}
    if result.is_error:
        block["status"] = "error"
    return {"toolResult": block}


def _assistant_blocks(item: n.Item) -> list[dict[str, Any]]:
    if isinstance(item, n.Reasoning):
        if item.redacted and item.encrypted:
            return [{"reasoningContent": {"redactedContent": item.encrypted}}]
        if item.signature:  # unsigned reasoning (another provider's) cannot be replayed
            signed = {"text": item.text, "signature": item.signature}
            return [{"reasoningContent": {"reasoningText": signed}}]
        return []
    if isinstance(item, n.ToolCall):
        args = json_object(item.arguments)
        if args is None:
            raise invalid("tool_calls.arguments", "a JSON object")
        use = {"toolUseId": tool_use_id(item.call_id), "name": item.name, "input": args}
        return [{"toolUse": use}]
    assert isinstance(item, n.Message)
    said = item.text or item.refusal or ""
    return [{"text": said}] if said else []


def converse_messages(items: list[n.Item]) -> list[dict[str, Any]]:
    """The conversation as alternating user and assistant turns."""
    turns: list[dict[str, Any]] = []
    for item in items:
        role = "user"
        if isinstance(item, n.ToolResult):
            blocks = [_tool_result(item)]
        elif isinstance(item, n.Message) and item.role == "user":
            blocks = [_block(p, i) for i, p in enumerate(item.parts)]
        else:
            role, blocks = "assistant", _assistant_blocks(item)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _tool_config(req: n.Request) -> dict[str, Any] | None:
    if req.hosted_tools:
        raise unsupported("Hosted tools", API, "tools")
    if not req.tools or req.tool_choice == "none":
        return None  # Converse has no "none": the tools are left out instead
    tools = [
        {
            "toolSpec": {
                "name": tool.name,
                **({"description": tool.description} if tool.description else {}),
                "inputSchema": {"json": tool.parameters or {"type": "object", "properties": {}}},
            }
        }
        for tool in req.tools
    ]
    config: dict[str, Any] = {"tools": tools}
    if req.tool_choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif req.tool_choice == "required":
        config["toolChoice"] = {"any": {}}
    elif req.tool_choice is not None:
        config["toolChoice"] = {"tool": {"name": req.tool_choice}}
    return config


def _budget(req: n.Request) -> int:
    """The thinking budget to ask for (0: none); Claude cannot think with a forced tool."""
    if req.reasoning is None or req.tool_choice not in (None, "auto", "none"):
        return 0
    budget = budget_of(req.reasoning)
    if req.max_output_tokens is not None:
        budget = min(budget, req.max_output_tokens - 1)
    return budget if budget >= MIN_BUDGET else 0


def converse_body(req: n.Request) -> dict[str, Any]:
    """The Converse (and ConverseStream) body; the model is named by the URL."""
    system, rest = split_system(req.items, API)
    turns = converse_messages(rest)
    if not turns:
        raise invalid("messages", "at least one user or assistant message")
    fmt = req.response_format
    if fmt is not None and fmt.type != "text":
        raise unsupported("Structured output", API, "response_format")
    body: dict[str, Any] = {"messages": turns}
    if system:
        body["system"] = [{"text": text} for text in system]
    budget = _budget(req)
    inference: dict[str, Any] = {}
    if req.max_output_tokens is not None:
        inference["maxTokens"] = req.max_output_tokens
    if not budget:  # Claude only allows sampling settings without thinking
        if req.temperature is not None:
            inference["temperature"] = req.temperature
        if req.top_p is not None:
            inference["topP"] = req.top_p
    elif "maxTokens" not in inference:
        inference["maxTokens"] = DEFAULT_MAX_TOKENS + budget  # must exceed the budget
    if req.stop:
        inference["stopSequences"] = req.stop
    if inference:
        body["inferenceConfig"] = inference
    if budget:
        # Thinking is a model-specific field (Claude's), passed through Converse as it is.
        thinking = {"type": "enabled", "budget_tokens": budget}
        body["additionalModelRequestFields"] = {"thinking": thinking}
    tools = _tool_config(req)
    if tools is not None:
        body["toolConfig"] = tools
    return body

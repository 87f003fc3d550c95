"""Neutral requests as Gemini `generateContent` request bodies."""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from edge.translate import neutral as n
from edge.translate.common import invalid, unsupported
from edge.translate.extras import extras_for
from edge.translate.jsontext import json_object, split_system
from edge.translate.reasoning import budget_of, effort_of

API = "by Gemini models"
# Gemini documents this value for function calls whose signature was not kept (history from
# another model, or from a client API with nowhere to carry it).
SKIP_SIGNATURE = "skip_thought_signature_validator"
HOSTED = frozenset({"googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext"})
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def _media(part: n.ImagePart | n.FilePart) -> dict[str, Any]:
    if part.data is not None:
        if not part.media_type:
            raise invalid("media_type", "the media type of base64 content")
        return {"inlineData": {"mimeType": part.media_type, "data": part.data}}
    assert part.url is not None
    mime = part.media_type or mimetypes.guess_type(part.url)[0]
    if mime is None:
        mime = "image/jpeg" if isinstance(part, n.ImagePart) else "application/pdf"
    return {"fileData": {"mimeType": mime, "fileUri": part.url}}


def _part(part: n.Part) -> dict[str, Any]:
    if isinstance(part, n.TextPart):
        return {"text": part.text}
    return _media(part)


def _response_object(output: str | list[n.Part]) -> dict[str, Any]:
    if not isinstance(output, str):
        if any(not isinstance(p, n.TextPart) for p in output):
            raise unsupported("Images or files inside a tool result", API, "tool_result")
        output = "".join(p.text for p in output if isinstance(p, n.TextPart))
    parsed = json_object(output)
    if parsed is not None and output.strip():
        return parsed
    try:
        value: Any = orjson.loads(output)
    except orjson.JSONDecodeError:
        value = output
    return {"result": value}


class _Contents:
    """Builds `contents`, merging same-role turns and placing thought signatures."""

    def __init__(self) -> None:
        self.contents: list[dict[str, Any]] = []
        self._names: dict[str, str] = {}  # call id -> function name
        self._signature: str | None = None
        self._call_signed = False  # the current model turn's first call has a signature

    def _append(self, role: str, part: dict[str, Any]) -> None:
        if self.contents and self.contents[-1]["role"] == role:
            self.contents[-1]["parts"].append(part)
        else:
            self.contents.append({"role": role, "parts": [part]})

    def _model(self, part: dict[str, Any], is_call: bool) -> None:
        if not self.contents or self.contents[-1]["role"] != "model":
            self._call_signed = False
        if self._signature is not None:
            part["thoughtSignature"] = self._signature
            self._signature = None
            self._call_signed = self._call_signed or is_call
        elif is_call and not self._call_signed:
            # The first call of a step must carry a signature.
            part["thoughtSignature"] = SKIP_SIGNATURE
            self._call_signed = True
        self._append("model", part)

    def add(self, item: n.Item) -> None:
        """Add one item of the conversation."""
        if isinstance(item, n.Message) and item.role == "user":
            self._signature = None
            for part in item.parts:
                self._append("user", _part(part))
        elif isinstance(item, n.ToolResult):
            self._signature = None
            name = item.name or self._names.get(item.call_id)
            if name is None:
                raise invalid("tool_result.call_id", f"the id of an earlier call ({item.call_id})")
            response = {"name": name, "response": _response_object(item.output)}
            self._append("user", {"functionResponse": response})
        elif isinstance(item, n.Reasoning):
            # Gemini wants signatures back on the part they came with, not the thought text.
            self._signature = item.signature or self._signature
        elif isinstance(item, n.ToolCall):
            self._names[item.call_id] = item.name
            args = json_object(item.arguments)
            if args is None:
                raise invalid("tool_calls.arguments", "a JSON object")
            self._model({"functionCall": {"name": item.name, "args": args}}, is_call=True)
        elif isinstance(item, n.Message):
            text = item.text or item.refusal or ""
            if text:
                self._model({"text": text}, is_call=False)


def _tools(req: n.Request) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    if req.tools:
        declarations = []
        for tool in req.tools:
            decl: dict[str, Any] = {"name": tool.name}
            if tool.description:
                decl["description"] = tool.description
            if tool.parameters:
                decl["parametersJsonSchema"] = tool.parameters
            declarations.append(decl)
        tools.append({"functionDeclarations": declarations})
    for hosted in req.hosted_tools:
        if hosted.type not in HOSTED:
            raise unsupported(f"The hosted tool '{hosted.type}'", API, "tools")
        tools.append({hosted.type: hosted.config})
    return tools


def _tool_config(choice: n.ToolChoice) -> dict[str, Any]:
    if choice in _MODES:
        return {"functionCallingConfig": {"mode": _MODES[choice]}}
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice]}}


def _thinking(config: n.ReasoningConfig, model: str) -> dict[str, Any]:
    if model.startswith("gemini-3"):
        effort = effort_of(config)
        # Gemini 3 takes a level; Pro knows only low and high.
        level = "low" if effort in ("none", "minimal", "low") else "high"
        return {"thinkingLevel": level, "includeThoughts": True}
    budget = budget_of(config)
    return {"thinkingBudget": budget, "includeThoughts": budget > 0}


def _generation(req: n.Request, extras: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, value in (
        ("maxOutputTokens", req.max_output_tokens),
        ("temperature", req.temperature),
        ("topP", req.top_p),
    ):
        if value is not None:
            config[key] = value
    config.update(extras)
    if req.stop:
        config["stopSequences"] = req.stop
    fmt = req.response_format
    if fmt is not None and fmt.type != "text":
        config["responseMimeType"] = "application/json"
        if fmt.type == "json_schema" and fmt.schema is not None:
            config["responseJsonSchema"] = fmt.schema
    if req.reasoning is not None:
        config["thinkingConfig"] = _thinking(req.reasoning, req.model)
    return config


def gemini_body(req: n.Request) -> dict[str, Any]:
    """The `generateContent` body for a neutral request (the model goes in the URL)."""
    system, rest = split_system(req.items, API)
    builder = _Contents()
    for item in rest:
        builder.add(item)
    if not builder.contents:
        raise invalid("contents", "at least one user or model message")
    body: dict[str, Any] = {"contents": builder.contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    tools = _tools(req)
    if tools:
        body["tools"] = tools
    if req.tool_choice is not None and req.tools:
        body["toolConfig"] = _tool_config(req.tool_choice)
    # `parallel_tool_calls: false` has no Gemini field: the adapter keeps the turn's first
    # call only (`gemini_upstream.first_call_only`).
    extras = extras_for(req, "gemini")
    safety = extras.pop("safetySettings", None)
    if safety is not None:
        body["safetySettings"] = safety
    generation = _generation(req, extras)
    if generation:
        body["generationConfig"] = generation
    return body

"""Gemini `generateContent` requests to the neutral model."""

from __future__ import annotations

import re
from typing import Any

from edge.errors import GatewayError
from edge.request_limits import MAX_ITEMS, MAX_LIST, MAX_PARTS, MAX_TOOLS, capped, too_long
from edge.translate import neutral as n
from edge.translate.common import invalid, opt_dict, opt_int, opt_list, opt_num, unsupported
from edge.translate.gemini_outbound import HOSTED
from edge.translate.gemini_schema import to_json_schema
from edge.translate.jsontext import json_text
from edge.translate.reasoning import effort_for_budget

API = "by the Gemini API for this model"
_LEVELS: dict[str, n.Effort] = {
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "xhigh",
}
_MODES = {"AUTO": "auto", "VALIDATED": "auto", "ANY": "required", "NONE": "none"}
# Values that are the caller's own data (arguments, results, schemas): their keys stay as sent.
_OPAQUE = frozenset(
    {
        "args",
        "response",
        "parameters",
        "parametersJsonSchema",
        "responseSchema",
        "responseJsonSchema",
        "metadata",
        "labels",
    }
)
MAX_DEPTH = 64
# A proto field name (lower_snake_case): the only other spelling Google's parser takes for a
# field besides its lowerCamelCase JSON name. `max__output_tokens` or `maxOutput_tokens` are
# neither, so they are not read as `maxOutputTokens` (the quota estimate does not either).
_PROTO_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")


def _camel(name: str) -> str:
    if "_" not in name or not _PROTO_NAME.fullmatch(name):
        return name
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _clash(where: str, first: str, second: str) -> GatewayError:
    place = f"'{where}'" if where else "the request body"
    return GatewayError(
        400,
        f"Both '{first}' and '{second}' are set in {place}: they are two spellings of one "
        "field. Send only one of them.",
        param=f"{where}.{first}" if where else first,
        code="ambiguous_field",
    )


def check_field_names(body: dict[str, Any]) -> None:
    """400 when an object of a Gemini request sets one field under both of its names
    (`maxOutputTokens` and `max_output_tokens`): which one a parser keeps is not ours to guess,
    and the quota estimate must read the one that goes upstream. The caller's own data
    (arguments, schemas) keeps its keys as sent and is not checked."""
    stack: list[tuple[Any, str]] = [(body, "")]
    while stack:
        node, where = stack.pop()
        if isinstance(node, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node) if _nested(v))
            continue
        converted: dict[str, str] = {}  # lowerCamelCase name -> the proto name that gave it
        for key, item in node.items():
            name = _camel(key)
            if name != key:
                other = name if name in node else converted.get(name)
                if other is not None:
                    raise _clash(where, other, key)
                converted[name] = key
            if name not in _OPAQUE and _nested(item):
                stack.append((item, f"{where}.{name}" if where else name))


def _nested(value: Any) -> bool:
    return isinstance(value, dict | list)


def camel_keys(value: Any, depth: int = 0) -> Any:
    """Field names in lowerCamelCase: like Google's own parser, accept proto field names too
    (the Google SDK itself sends some nested fields as `mime_type` or `thinking_budget`)."""
    if depth > MAX_DEPTH:
        return value
    if isinstance(value, list):
        return [camel_keys(v, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _camel(key)
        out[name] = item if name in _OPAQUE else camel_keys(item, depth + 1)
    return out


def _media(part: dict[str, Any], at: str) -> n.Part:
    if "inlineData" in part and "fileData" in part:
        raise invalid(at, "a Part with one of inlineData or fileData")
    if "inlineData" in part:
        blob = part["inlineData"]
        mime = blob.get("mimeType") if isinstance(blob, dict) else None
        data = blob.get("data") if isinstance(blob, dict) else None
        if not isinstance(data, str) or not isinstance(mime, str):
            raise invalid(f"{at}.inlineData", "an object with mimeType and base64 data")
        if mime.startswith("image/"):
            return n.ImagePart(data=data, media_type=mime)
        return n.FilePart(data=data, media_type=mime)
    ref = part["fileData"]
    if not isinstance(ref, dict):
        raise invalid(f"{at}.fileData", "an object with a fileUri")
    uri, mime = ref.get("fileUri"), ref.get("mimeType")
    if not isinstance(uri, str):
        raise invalid(f"{at}.fileData.fileUri", "a string")
    if isinstance(mime, str) and not mime.startswith("image/"):
        return n.FilePart(url=uri, media_type=mime)
    return n.ImagePart(url=uri, media_type=mime if isinstance(mime, str) else None)


class _Turns:
    """Walks `contents`, pairing function responses with calls (by id, else by name)."""

    def __init__(self) -> None:
        self.items: list[n.Item] = []
        self._open: list[n.ToolCall] = []  # calls not yet answered
        self._count = 0
        self._reasoning: n.Reasoning | None = None

    def _call(self, fc: dict[str, Any], signature: str | None, at: str) -> None:
        name = fc.get("name")
        if not isinstance(name, str):
            raise invalid(f"{at}.functionCall.name", "a string")
        if signature is not None:
            self.items.append(n.Reasoning(signature=signature))
        self._count += 1
        given = fc.get("id")
        call_id = given if isinstance(given, str) and given else f"call_{self._count}"
        call = n.ToolCall(call_id=call_id, name=name, arguments=json_text(fc.get("args") or {}))
        self.items.append(call)
        self._open.append(call)

    def _response(self, fr: dict[str, Any], at: str) -> None:
        name = fr.get("name")
        if not isinstance(name, str):
            raise invalid(f"{at}.functionResponse.name", "a string")
        wanted = fr.get("id")
        match = next(
            (c for c in self._open if (c.call_id == wanted if wanted else c.name == name)), None
        )
        if match is not None:
            self._open.remove(match)
        call_id = match.call_id if match else str(wanted or name)
        output = json_text(fr.get("response") or {})
        self.items.append(n.ToolResult(call_id=call_id, output=output, name=name))

    def _thought(self, part: dict[str, Any]) -> None:
        # Streamed thoughts come back as many parts; the signature closes the block.
        if self._reasoning is None:
            self._reasoning = n.Reasoning()
            self.items.append(self._reasoning)
        self._reasoning.text += str(part.get("text", ""))
        if part.get("thoughtSignature"):
            self._reasoning.signature = part["thoughtSignature"]
            self._reasoning = None

    def content(self, content: Any, at: str) -> None:
        """Read one Content object (`at` is its path, for errors)."""
        if not isinstance(content, dict):
            raise invalid(at, "a Content object")
        role = content.get("role", "user")
        if role not in ("user", "model", "function"):
            raise invalid(f"{at}.role", "'user' or 'model'")
        parts: list[n.Part] = []
        raw_parts = capped(opt_list(content, "parts", f"{at}.") or [], f"{at}.parts", MAX_PARTS)
        for j, part in enumerate(raw_parts):
            where = f"{at}.parts[{j}]"
            if not isinstance(part, dict):
                raise invalid(where, "a Part object")
            if part.get("thought") and role == "model":
                self._thought(part)
                continue
            self._reasoning = None
            signature = part.get("thoughtSignature")
            if isinstance(part.get("functionCall"), dict):
                self._call(part["functionCall"], signature, where)
            elif isinstance(part.get("functionResponse"), dict):
                self._response(part["functionResponse"], where)
            elif isinstance(part.get("text"), str):
                if role == "model":
                    text = n.TextPart(part["text"])
                    self.items.append(n.Message(role="assistant", parts=[text]))
                else:
                    parts.append(n.TextPart(part["text"]))
            elif "inlineData" in part or "fileData" in part:
                parts.append(_media(part, where))
            else:
                kind = next(iter(part), "empty")
                raise unsupported(f"The part type {kind!r}", API, where)
        if parts:
            self.items.append(n.Message(role="user", parts=parts))


def _system(raw: Any) -> list[n.Item]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [n.Message(role="system", parts=[n.TextPart(raw)])]
    parts = raw.get("parts") if isinstance(raw, dict) else None
    if not isinstance(parts, list):
        raise invalid("systemInstruction", "a Content object with text parts")
    capped(parts, "systemInstruction.parts", MAX_PARTS)
    if not all(isinstance(p, dict) for p in parts):
        raise invalid("systemInstruction", "a Content object with text parts")
    texts: list[n.Part] = [n.TextPart(str(p.get("text", ""))) for p in parts]
    return [n.Message(role="system", parts=texts)]


def _tools(raw: list[Any]) -> tuple[list[n.ToolSpec], list[n.HostedTool]]:
    specs: list[n.ToolSpec] = []
    hosted: list[n.HostedTool] = []
    for i, tool in enumerate(capped(raw, "tools", MAX_TOOLS)):
        if not isinstance(tool, dict):
            raise invalid(f"tools[{i}]", "a Tool object")
        for key, value in tool.items():
            if key in HOSTED:
                config = value if isinstance(value, dict) else {}
                hosted.append(n.HostedTool(type=key, config=config))
            elif key != "functionDeclarations":
                raise unsupported(f"The tool {key!r}", API, f"tools[{i}].{key}")
        declarations = opt_list(tool, "functionDeclarations", f"tools[{i}].") or []
        if len(specs) + len(declarations) > MAX_TOOLS:
            where = f"tools[{i}].functionDeclarations"
            raise too_long(where, MAX_TOOLS, len(specs) + len(declarations))
        for j, decl in enumerate(declarations):
            if not isinstance(decl, dict) or not isinstance(decl.get("name"), str):
                raise invalid(f"tools[{i}].functionDeclarations[{j}].name", "a string")
            schema = decl.get("parametersJsonSchema") or to_json_schema(decl.get("parameters"))
            params = schema if isinstance(schema, dict) else None
            about = decl.get("description")
            specs.append(n.ToolSpec(name=decl["name"], description=about, parameters=params))
    return specs, hosted


def _tool_choice(config: dict[str, Any] | None) -> n.ToolChoice | None:
    calling = (config or {}).get("functionCallingConfig")
    if not isinstance(calling, dict):
        return None
    mode = _MODES.get(str(calling.get("mode", "AUTO")).upper())
    if mode is None:
        raise invalid("toolConfig.functionCallingConfig.mode", "AUTO, ANY, NONE or VALIDATED")
    names = calling.get("allowedFunctionNames")
    if mode == "required" and isinstance(names, list) and len(names) == 1:
        return str(names[0])
    return mode


def _reasoning(gen: dict[str, Any]) -> n.ReasoningConfig | None:
    thinking = opt_dict(gen, "thinkingConfig", "generationConfig.")
    if thinking is None:
        return None
    level = thinking.get("thinkingLevel")
    if isinstance(level, str) and level.lower() in _LEVELS:
        return n.ReasoningConfig(effort=_LEVELS[level.lower()])
    budget = opt_int(thinking, "thinkingBudget", "generationConfig.thinkingConfig.", minimum=-1)
    if budget is None or budget == -1:  # -1: the model decides
        return n.ReasoningConfig(effort="medium") if thinking.get("includeThoughts") else None
    return n.ReasoningConfig(effort=effort_for_budget(budget), budget_tokens=budget or None)


def _format(gen: dict[str, Any]) -> n.ResponseFormat | None:
    schema = gen.get("responseJsonSchema") or to_json_schema(gen.get("responseSchema"))
    if isinstance(schema, dict):
        return n.ResponseFormat(type="json_schema", name="response", schema=schema)
    if gen.get("responseMimeType") == "application/json":
        return n.ResponseFormat(type="json_object")
    return None


def _int32(gen: dict[str, Any], key: str) -> int | None:
    """An int32 field of generationConfig (a number past 64 bits could not be sent on)."""
    value = opt_num(gen, key, "generationConfig.")
    if value is None:
        return None
    if not -(2**31) <= value < 2**31:
        raise invalid(f"generationConfig.{key}", "an integer of at most 32 bits")
    return int(value)


def _extras(body: dict[str, Any], gen: dict[str, Any]) -> dict[str, Any]:
    """Settings that only some providers take (see edge.translate.extras)."""
    extra: dict[str, Any] = {}
    for name, key in (("top_k", "topK"), ("seed", "seed")):
        number = _int32(gen, key)
        if number is not None:
            extra[name] = number
    for name, key in (
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        value = opt_num(gen, key, "generationConfig.")
        if value is not None:
            extra[name] = value
    if opt_list(body, "safetySettings"):
        extra["safety_settings"] = body["safetySettings"]
    return extra


def parse_gemini_request(body: dict[str, Any], model: str, stream: bool) -> n.Request:
    """Validate a `generateContent` body and convert it; 400 naming the field when wrong."""
    check_field_names(body)
    body = camel_keys(body)
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise invalid("contents", "a non-empty array of Content objects")
    capped(contents, "contents", MAX_ITEMS)
    if body.get("cachedContent") is not None:
        raise unsupported("'cachedContent'", API, "cachedContent")
    turns = _Turns()
    for i, content in enumerate(contents):
        turns.content(content, f"contents[{i}]")
    gen = opt_dict(body, "generationConfig") or {}
    count = opt_int(gen, "candidateCount", "generationConfig.", minimum=1)
    if count is not None and count > 1:
        raise unsupported("'candidateCount' greater than 1", API, "generationConfig")
    raw_modalities = opt_list(gen, "responseModalities", "generationConfig.") or []
    modalities = [str(m).upper() for m in capped(raw_modalities, "responseModalities", MAX_LIST)]
    if any(m != "TEXT" for m in modalities):
        raise unsupported("Response modalities other than TEXT", API, "responseModalities")
    tools, hosted = _tools(opt_list(body, "tools") or [])
    stop = opt_list(gen, "stopSequences", "generationConfig.") or []
    capped(stop, "generationConfig.stopSequences", MAX_LIST)
    extra = _extras(body, gen)
    return n.Request(
        model=model,
        items=_system(body.get("systemInstruction")) + turns.items,
        tools=tools,
        hosted_tools=hosted,
        tool_choice=_tool_choice(opt_dict(body, "toolConfig")),
        max_output_tokens=opt_int(gen, "maxOutputTokens", "generationConfig.", minimum=1),
        temperature=opt_num(gen, "temperature", "generationConfig."),
        top_p=opt_num(gen, "topP", "generationConfig."),
        stop=[str(s) for s in stop],
        response_format=_format(gen),
        reasoning=_reasoning(gen),
        stream=stream,
        extra=extra,
    )

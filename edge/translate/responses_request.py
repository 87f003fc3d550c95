"""Responses create bodies: validated, echoed back in response objects, converted to neutral."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edge.errors import bad_request
from edge.request_limits import MAX_TOOLS, capped
from edge.translate import neutral as n
from edge.translate.common import invalid, opt_bool, opt_dict, opt_int, opt_list, opt_num, opt_str
from edge.translate.responses_items import items_to_neutral, normalize_items

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
SUMMARIES = ("auto", "concise", "detailed")
# Gateway-only fields: accepted and recorded, never sent to a provider.
GATEWAY_FIELDS = ("tags", "trace", "providerOptions")


@dataclass(slots=True)
class ResponseParams:
    """What a create request asked for: the fields a response object echoes, and run flags."""

    instructions: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    text: dict[str, Any] = field(default_factory=lambda: {"format": {"type": "text"}})
    reasoning: dict[str, Any] = field(default_factory=lambda: {"effort": None, "summary": None})
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    top_logprobs: int | None = None
    truncation: str = "disabled"
    metadata: dict[str, str] = field(default_factory=dict)
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None
    user: str | None = None
    store: bool = True
    background: bool = False
    stream: bool = False
    previous_response_id: str | None = None
    tags: Any = None
    trace: Any = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (kept with a background job)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResponseParams:
        """Parse a stored form."""
        return cls(**data)


def _metadata(body: dict[str, Any]) -> dict[str, str]:
    raw = opt_dict(body, "metadata") or {}
    if len(raw) > 16:
        raise bad_request("Invalid 'metadata': at most 16 key-value pairs.", param="metadata")
    for key, value in raw.items():
        if len(key) > 64:
            raise bad_request(
                f"Invalid 'metadata': key {key[:16]!r}... is longer than 64 characters.",
                param="metadata",
            )
        if not isinstance(value, str) or len(value) > 512:
            raise bad_request(
                f"Invalid 'metadata.{key}': expected a string of at most 512 characters.",
                param=f"metadata.{key}",
            )
    return dict(raw)


def _tool(tool: Any, i: int) -> dict[str, Any]:
    if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
        raise invalid(f"tools[{i}]", "a tool object with a 'type'")
    if tool["type"] != "function":
        return tool  # a hosted tool: only providers that host it accept it
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise invalid(f"tools[{i}].name", "a string")
    params = tool.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise invalid(f"tools[{i}].parameters", "a JSON schema object")
    return {
        "type": "function",
        "name": tool["name"],
        "description": tool.get("description"),
        "parameters": params,
        "strict": tool.get("strict"),
    }


def _tools(body: dict[str, Any]) -> list[Any]:
    return capped(opt_list(body, "tools") or [], "tools", MAX_TOOLS)


def _tool_choice(raw: Any) -> Any:
    if raw is None:
        return "auto"
    if raw in ("auto", "none", "required"):
        return raw
    if isinstance(raw, dict) and isinstance(raw.get("type"), str):
        if raw["type"] == "function" and not isinstance(raw.get("name"), str):
            raise invalid("tool_choice.name", "a string")
        return raw
    raise invalid("tool_choice", "'auto', 'none', 'required' or a tool choice object")


def _text(body: dict[str, Any]) -> dict[str, Any]:
    text = dict(opt_dict(body, "text") or {})
    fmt = text.get("format") or {"type": "text"}
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise invalid("text.format.type", "'text', 'json_object' or 'json_schema'")
    if fmt["type"] == "json_schema":
        if not isinstance(fmt.get("schema"), dict):
            raise invalid("text.format.schema", "a JSON schema object")
        if not isinstance(fmt.get("name"), str):
            raise invalid("text.format.name", "a string")
        fmt = {"description": None, "strict": False, **fmt}
    text["format"] = fmt
    if text.get("verbosity") not in (None, "low", "medium", "high"):
        raise invalid("text.verbosity", "'low', 'medium' or 'high'")
    return text


def _reasoning(body: dict[str, Any]) -> dict[str, Any]:
    raw = opt_dict(body, "reasoning") or {}
    effort, summary = raw.get("effort"), raw.get("summary")
    if effort is not None and effort not in EFFORTS:
        raise invalid("reasoning.effort", f"one of {', '.join(EFFORTS)}")
    if summary is not None and summary not in SUMMARIES:
        raise invalid("reasoning.summary", f"one of {', '.join(SUMMARIES)}")
    return {"effort": effort, "summary": summary}


def _bounded(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = opt_num(body, name)
    if value is not None and not low <= value <= high:
        raise invalid(name, f"a number between {low:g} and {high:g}")
    return value


def parse_params(body: dict[str, Any]) -> ResponseParams:
    """Validate a create body's settings; 400 naming the field when one is wrong."""
    key = opt_str(body, "prompt_cache_key")
    if key is not None and len(key) > 64:
        raise invalid("prompt_cache_key", "a string of at most 64 characters")
    truncation = opt_str(body, "truncation") or "disabled"
    if truncation not in ("auto", "disabled"):
        raise invalid("truncation", "'auto' or 'disabled'")
    store = opt_bool(body, "store")
    background = opt_bool(body, "background") or False
    if background and store is False:
        raise bad_request("Background responses require 'store': true.", param="background")
    if opt_dict(body, "providerOptions") is None and body.get("providerOptions") is not None:
        raise invalid("providerOptions", "an object")
    return ResponseParams(
        instructions=opt_str(body, "instructions"),
        tools=[_tool(t, i) for i, t in enumerate(_tools(body))],
        tool_choice=_tool_choice(body.get("tool_choice")),
        parallel_tool_calls=opt_bool(body, "parallel_tool_calls") is not False,
        text=_text(body),
        reasoning=_reasoning(body),
        max_output_tokens=opt_int(body, "max_output_tokens", minimum=1),
        max_tool_calls=opt_int(body, "max_tool_calls", minimum=1),
        temperature=_bounded(body, "temperature", 0, 2),
        top_p=_bounded(body, "top_p", 0, 1),
        presence_penalty=_bounded(body, "presence_penalty", -2, 2),
        frequency_penalty=_bounded(body, "frequency_penalty", -2, 2),
        top_logprobs=opt_int(body, "top_logprobs", minimum=0),
        truncation=truncation,
        metadata=_metadata(body),
        prompt_cache_key=key,
        safety_identifier=opt_str(body, "safety_identifier"),
        service_tier=opt_str(body, "service_tier"),
        user=opt_str(body, "user"),
        store=store is not False,
        background=background,
        stream=opt_bool(body, "stream") or False,
        previous_response_id=opt_str(body, "previous_response_id"),
        tags=body.get("tags"),
        trace=body.get("trace"),
    )


def input_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's own input items, typed and with ids."""
    raw = body.get("input")
    if raw is None:
        if body.get("previous_response_id") is None:
            raise bad_request("Missing required parameter: 'input'.", param="input")
        return []
    return normalize_items(raw)


def _format(text: dict[str, Any]) -> n.ResponseFormat | None:
    fmt = text["format"]
    if fmt["type"] == "text":
        return None
    if fmt["type"] == "json_object":
        return n.ResponseFormat(type="json_object")
    return n.ResponseFormat(
        type="json_schema",
        name=fmt.get("name"),
        schema=fmt.get("schema"),
        strict=fmt.get("strict"),
        description=fmt.get("description"),
    )


def _neutral_choice(choice: Any) -> n.ToolChoice | None:
    if isinstance(choice, str):
        return choice
    if choice.get("type") == "function":
        return str(choice["name"])
    if choice.get("type") == "allowed_tools":
        return str(choice.get("mode", "auto"))
    return "auto"


def to_neutral_request(
    params: ResponseParams, items: list[dict[str, Any]], model: str, stream: bool
) -> n.Request:
    """The neutral request for a provider adapter: instructions first, then every item."""
    neutral_items = items_to_neutral(items)
    if params.instructions:
        neutral_items.insert(0, n.Message(role="system", parts=[n.TextPart(params.instructions)]))
    functions = [t for t in params.tools if t["type"] == "function"]
    hosted = [t for t in params.tools if t["type"] != "function"]
    effort, summary = params.reasoning["effort"], params.reasoning["summary"]
    return n.Request(
        model=model,
        items=neutral_items,
        tools=[
            n.ToolSpec(t["name"], t["description"], t["parameters"], t["strict"]) for t in functions
        ],
        hosted_tools=[n.HostedTool(type=t["type"], config=t) for t in hosted],
        tool_choice=_neutral_choice(params.tool_choice),
        parallel_tool_calls=params.parallel_tool_calls,
        max_output_tokens=params.max_output_tokens,
        temperature=params.temperature,
        top_p=params.top_p,
        response_format=_format(params.text),
        reasoning=n.ReasoningConfig(effort=effort, summary=summary) if effort or summary else None,
        stream=stream,
        user=params.user,
        metadata=dict(params.metadata),
        extra={
            k: v
            for k, v in (
                ("prompt_cache_key", params.prompt_cache_key),
                ("truncation", params.truncation if params.truncation != "disabled" else None),
                ("safety_identifier", params.safety_identifier),
                ("verbosity", params.text.get("verbosity")),
                ("max_tool_calls", params.max_tool_calls),
            )
            if v is not None
        },
    )

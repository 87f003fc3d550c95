"""The neutral representation every API adapter converts to and from.

Requests are a list of items (messages with content parts, tool calls, tool results,
reasoning) plus generation settings; responses are output items plus a stop reason and
usage; streams are a flat sequence of typed events that each client-side renderer turns
into its own API's event taxonomy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from edge.usage import Usage

Role = Literal["system", "developer", "user", "assistant"]
StopReason = Literal["stop", "length", "tool_calls", "content_filter", "refusal", "pause"]
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


@dataclass(slots=True)
class TextPart:
    """Plain text."""

    text: str


@dataclass(slots=True)
class ImagePart:
    """An image by URL or as base64 data."""

    url: str | None = None
    data: str | None = None  # base64, without a data: prefix
    media_type: str | None = None
    detail: str | None = None


@dataclass(slots=True)
class FilePart:
    """A document (PDF and the like) as base64 data or by URL."""

    data: str | None = None
    url: str | None = None
    media_type: str | None = None
    filename: str | None = None


Part = TextPart | ImagePart | FilePart


@dataclass(slots=True)
class Message:
    """A message; assistant messages may carry a refusal instead of text."""

    role: Role
    parts: list[Part] = field(default_factory=list)
    refusal: str | None = None
    id: str | None = None

    @property
    def text(self) -> str:
        """The concatenated text parts."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))


@dataclass(slots=True)
class ToolCall:
    """A call the model made; `arguments` is the JSON text as the model produced it."""

    call_id: str
    name: str
    arguments: str = "{}"
    id: str | None = None


@dataclass(slots=True)
class ToolResult:
    """The result of a tool call, sent back by the client."""

    call_id: str
    output: str | list[Part]
    name: str | None = None
    is_error: bool = False


@dataclass(slots=True)
class Reasoning:
    """Reasoning content; signatures and encrypted content are kept for the next turn."""

    text: str = ""
    summary: list[str] = field(default_factory=list)
    signature: str | None = None
    encrypted: str | None = None
    redacted: bool = False
    id: str | None = None


Item = Message | ToolCall | ToolResult | Reasoning


@dataclass(slots=True)
class ToolSpec:
    """A function tool the model may call."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


@dataclass(slots=True)
class HostedTool:
    """A provider-hosted tool (web search, code interpreter...), passed only where it exists."""

    type: str
    config: dict[str, Any] = field(default_factory=dict)


ToolChoice = Literal["auto", "none", "required"] | str  # a bare name forces that function


@dataclass(slots=True)
class ResponseFormat:
    """Structured output."""

    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


@dataclass(slots=True)
class ReasoningConfig:
    """How much the model should think, and whether to summarise it."""

    effort: Effort | None = None
    summary: str | None = None
    budget_tokens: int | None = None


@dataclass(slots=True)
class Request:
    """A generation request in neutral form."""

    model: str
    items: list[Item]
    tools: list[ToolSpec] = field(default_factory=list)
    hosted_tools: list[HostedTool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    response_format: ResponseFormat | None = None
    reasoning: ReasoningConfig | None = None
    stream: bool = False
    user: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Response:
    """A whole generation result."""

    id: str
    model: str
    items: list[Item]
    stop_reason: StopReason = "stop"
    usage: Usage = field(default_factory=Usage)
    created: int = 0


# Stream events ------------------------------------------------------------------------


@dataclass(slots=True)
class Start:
    """The stream began; id and model as the provider reported them."""

    id: str
    model: str
    created: int = 0


@dataclass(slots=True)
class TextDelta:
    """More assistant text."""

    text: str


@dataclass(slots=True)
class RefusalDelta:
    """More refusal text."""

    text: str


@dataclass(slots=True)
class ReasoningDelta:
    """More reasoning text (or summary text)."""

    text: str


@dataclass(slots=True)
class ReasoningDone:
    """The current reasoning block ended, with its signature or encrypted content."""

    signature: str | None = None
    encrypted: str | None = None
    redacted: bool = False


@dataclass(slots=True)
class ToolCallStart:
    """A tool call began; `index` is its position among this turn's calls."""

    index: int
    call_id: str
    name: str


@dataclass(slots=True)
class ToolCallDelta:
    """More argument JSON text for the call at `index`."""

    index: int
    arguments: str


@dataclass(slots=True)
class Finish:
    """The generation ended normally."""

    stop_reason: StopReason
    usage: Usage | None = None


@dataclass(slots=True)
class UsageUpdate:
    """Usage reported before or after the finish (some providers send it separately)."""

    usage: Usage


Event = (
    Start
    | TextDelta
    | RefusalDelta
    | ReasoningDelta
    | ReasoningDone
    | ToolCallStart
    | ToolCallDelta
    | Finish
    | UsageUpdate
)

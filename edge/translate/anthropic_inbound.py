"""Anthropic Messages answers (whole or streamed) from the provider, in neutral form."""

from __future__ import annotations

from typing import Any

from edge.errors import GatewayError
from edge.translate import neutral as n
from edge.translate.anthropic_outbound import JSON_TOOL
from edge.translate.common import new_id
from edge.translate.jsontext import json_text
from edge.translate.upstream_http import malformed
from edge.upstream.errors import scrub
from edge.usage import Usage, from_anthropic

STOPS: dict[str, n.StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "refusal",
    "pause_turn": "pause",
}
# Anthropic error types in a stream, as the status a whole answer would have had.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "overloaded_error": 503,
    "timeout_error": 504,
}


def event_error(data: dict[str, Any]) -> GatewayError:
    """An `error` event as our error."""
    err: dict[str, Any] = data["error"] if isinstance(data.get("error"), dict) else {}
    kind = str(err.get("type") or "api_error")
    message = err.get("message")
    return GatewayError(
        _ERROR_STATUS.get(kind, 502),
        scrub(message) if isinstance(message, str) else "The upstream provider failed.",
        code=kind,
    )


def _explanation(details: Any) -> str | None:
    if isinstance(details, dict) and details.get("type") == "refusal":
        text = details.get("explanation")
        return text if isinstance(text, str) and text else None
    return None


def _block_item(block: dict[str, Any], json_tool: bool) -> n.Item | None:
    kind = block.get("type")
    if kind == "text":
        return n.Message(role="assistant", parts=[n.TextPart(str(block.get("text", "")))])
    if kind == "thinking":
        return n.Reasoning(text=str(block.get("thinking", "")), signature=block.get("signature"))
    if kind == "redacted_thinking":
        return n.Reasoning(redacted=True, encrypted=block.get("data"))
    if kind == "tool_use":
        args = json_text(block.get("input") or {})
        if json_tool and block.get("name") == JSON_TOOL:
            return n.Message(role="assistant", parts=[n.TextPart(args)])
        return n.ToolCall(call_id=str(block.get("id")), name=str(block.get("name")), arguments=args)
    return None  # server tools, fallbacks and future block types carry nothing we can relay


def message_response(body: Any, json_tool: bool = False) -> n.Response:
    """A whole Messages `message` body."""
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        raise malformed("the body is not a message")
    items = [
        item
        for block in body["content"]
        if isinstance(block, dict) and (item := _block_item(block, json_tool)) is not None
    ]
    stop = STOPS.get(str(body.get("stop_reason")), "stop")
    refusal = _explanation(body.get("stop_details"))
    if refusal:
        items.append(n.Message(role="assistant", refusal=refusal))
    if json_tool and stop == "tool_calls" and not any(isinstance(i, n.ToolCall) for i in items):
        stop = "stop"
    return n.Response(
        id=str(body.get("id") or new_id("msg_")),
        model=str(body.get("model") or ""),
        items=items,
        stop_reason=stop,
        usage=from_anthropic(body.get("usage")) or Usage(),
    )


class AnthropicStreamDecoder:
    """Messages stream events in, neutral events out; a malformed stream raises."""

    def __init__(self, json_tool: bool = False) -> None:
        self.done = False
        self._json_tool = json_tool
        self._started = False
        self._usage: dict[str, Any] = {}
        self._stop: n.StopReason = "stop"
        self._blocks: dict[int, str] = {}  # block index -> kind
        self._open: set[int] = set()
        self._tools: dict[int, int] = {}  # block index -> tool-call position
        self._tool_args: set[int] = set()
        self._signature: dict[int, str] = {}

    def _usage_update(self, usage: Any) -> None:
        # message_delta counts are cumulative; fields it omits keep their message_start value.
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    @property
    def usage(self) -> Usage:
        """Usage so far."""
        return from_anthropic(self._usage) or Usage()

    def _block_start(self, index: int, block: dict[str, Any]) -> list[n.Event]:
        if index in self._blocks:
            raise malformed(f"content block {index} started twice")
        kind = str(block.get("type"))
        self._blocks[index] = kind
        self._open.add(index)
        if kind == "text" and block.get("text"):
            return [n.TextDelta(str(block["text"]))]
        if kind == "thinking" and block.get("thinking"):
            return [n.ReasoningDelta(str(block["thinking"]))]
        if kind == "redacted_thinking":
            return [n.ReasoningDone(redacted=True, encrypted=block.get("data"))]
        if kind == "tool_use":
            if self._json_tool and block.get("name") == JSON_TOOL:
                self._blocks[index] = "json"
                return []
            self._tools[index] = len(self._tools)
            return [
                n.ToolCallStart(
                    index=self._tools[index],
                    call_id=str(block.get("id") or new_id("toolu_")),
                    name=str(block.get("name", "")),
                )
            ]
        return []

    def _block_delta(self, index: int, delta: dict[str, Any]) -> list[n.Event]:
        if index not in self._open:
            raise malformed(f"a delta for content block {index}, which is not open")
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [n.TextDelta(str(delta["text"]))]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [n.ReasoningDelta(str(delta["thinking"]))]
        if kind == "signature_delta":
            self._signature[index] = self._signature.get(index, "") + str(delta.get("signature"))
        elif kind == "input_json_delta" and delta.get("partial_json"):
            text = str(delta["partial_json"])
            if self._blocks[index] == "json":
                return [n.TextDelta(text)]
            if index in self._tools:
                self._tool_args.add(index)
                return [n.ToolCallDelta(index=self._tools[index], arguments=text)]
        return []

    def _block_stop(self, index: int) -> list[n.Event]:
        if index not in self._open:
            raise malformed(f"content block {index} stopped but is not open")
        self._open.discard(index)
        kind = self._blocks[index]
        if kind == "thinking":
            return [n.ReasoningDone(signature=self._signature.get(index) or None)]
        if index in self._tools and index not in self._tool_args:
            return [n.ToolCallDelta(index=self._tools[index], arguments="{}")]
        return []

    def feed(self, kind: str, data: dict[str, Any]) -> list[n.Event]:
        """Events for one stream event."""
        if kind == "error":
            raise event_error(data)
        if kind == "message_start":
            if self._started:
                raise malformed("a second message_start in one stream")
            self._started = True
            message = data.get("message") or {}
            self._usage_update(message.get("usage"))
            return [n.Start(id=str(message.get("id") or ""), model=str(message.get("model") or ""))]
        if not self._started:
            if kind == "ping":
                return []
            raise malformed(f"{kind} before message_start")
        if self.done:
            return []
        index = data.get("index")
        if kind == "content_block_start" and isinstance(index, int):
            return self._block_start(index, data.get("content_block") or {})
        if kind == "content_block_delta" and isinstance(index, int):
            return self._block_delta(index, data.get("delta") or {})
        if kind == "content_block_stop" and isinstance(index, int):
            return self._block_stop(index)
        if kind == "message_delta":
            return self._message_delta(data)
        if kind == "message_stop":
            return self._finish()
        return []

    def _message_delta(self, data: dict[str, Any]) -> list[n.Event]:
        delta = data.get("delta") or {}
        self._usage_update(data.get("usage"))
        if delta.get("stop_reason"):
            self._stop = STOPS.get(str(delta["stop_reason"]), "stop")
        refusal = _explanation(delta.get("stop_details"))
        return [n.RefusalDelta(refusal)] if refusal else []

    def _finish(self) -> list[n.Event]:
        if self._open:
            raise malformed("message_stop with content blocks still open")
        self.done = True
        stop = self._stop
        if stop == "tool_calls" and not self._tools:
            stop = "stop"  # only the JSON tool was called
        return [n.Finish(stop_reason=stop, usage=self.usage)]

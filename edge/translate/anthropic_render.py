"""Neutral responses and stream events rendered as Anthropic Messages."""

from __future__ import annotations

from typing import Any

import orjson

from edge.errors import GatewayError, error_body
from edge.sse import encode
from edge.translate import neutral as n
from edge.translate.common import new_id
from edge.translate.jsontext import tool_input
from edge.usage import Usage

STOPS: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "refusal": "refusal",
    "pause": "pause_turn",
}


def anthropic_usage(usage: Usage) -> dict[str, Any]:
    """Usage in the Messages shape: input excludes cache reads and writes."""
    out: dict[str, Any] = {
        "input_tokens": max(0, usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


_THINKING = {"type": "thinking", "thinking": "", "signature": ""}


def _stop_details(refusal: str) -> dict[str, Any] | None:
    return {"type": "refusal", "category": None, "explanation": refusal} if refusal else None


def _block(item: n.Item) -> dict[str, Any] | None:
    if isinstance(item, n.Reasoning):
        if item.redacted:
            return {"type": "redacted_thinking", "data": item.encrypted or item.signature or ""}
        text = item.text or "\n".join(item.summary)
        return {"type": "thinking", "thinking": text, "signature": item.signature or ""}
    if isinstance(item, n.ToolCall):
        return {
            "type": "tool_use",
            "id": item.call_id,
            "name": item.name,
            "input": tool_input(item.arguments),
        }
    if isinstance(item, n.Message) and item.text:
        return {"type": "text", "text": item.text}
    return None


def message_id(answer_id: str) -> str:
    """A Messages id (`msg_...`) for any provider's answer id (`resp_...`, `chatcmpl-...`)."""
    if answer_id.startswith("msg_"):
        return answer_id
    for prefix in ("resp_", "chatcmpl-", "chatcmpl_"):
        if answer_id.startswith(prefix):
            return "msg_" + answer_id.removeprefix(prefix)
    return "msg_" + answer_id if answer_id else new_id("msg_")


def render_message(resp: n.Response) -> dict[str, Any]:
    """A whole `message` object."""
    content = [block for item in resp.items if (block := _block(item)) is not None]
    refusal = "".join(i.refusal or "" for i in resp.items if isinstance(i, n.Message))
    return {
        "id": message_id(resp.id),
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": content,
        "stop_reason": STOPS[resp.stop_reason],
        "stop_sequence": None,
        "stop_details": _stop_details(refusal),
        "usage": anthropic_usage(resp.usage),
    }


def messages_stream_error(err: GatewayError) -> bytes:
    """The terminal `error` event of a Messages stream."""
    return encode(orjson.dumps(error_body("anthropic", err)), "error")


def _event(kind: str, **fields: Any) -> bytes:
    return encode(orjson.dumps({"type": kind, **fields}), kind)


class MessagesStreamRenderer:
    """Neutral events as `message_start` ... `message_stop`, one content block at a time."""

    def __init__(self) -> None:
        self._blocks = 0
        self._open: tuple[str, int] | None = None  # (kind, block index)
        self._tools: dict[int, int] = {}  # tool-call position -> block index
        self._refusal = ""
        self._usage = Usage()
        self._stop = "end_turn"

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index = self._open[1]
        self._open = None
        return _event("content_block_stop", index=index)

    def _start_block(self, kind: str, block: dict[str, Any]) -> tuple[bytes, int]:
        out = self._close()
        index = self._blocks
        self._blocks += 1
        self._open = (kind, index)
        return out + _event("content_block_start", index=index, content_block=block), index

    def _delta(self, kind: str, block: dict[str, Any], delta: dict[str, Any]) -> bytes:
        out = b""
        if self._open is None or self._open[0] != kind:
            out, _ = self._start_block(kind, block)
        assert self._open is not None
        return out + _event("content_block_delta", index=self._open[1], delta=delta)

    def _message_start(self, event: n.Start) -> bytes:
        message: dict[str, Any] = {
            "id": message_id(event.id),
            "type": "message",
            "role": "assistant",
            "model": event.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": anthropic_usage(Usage()),
        }
        return _event("message_start", message=message)

    def _reasoning_done(self, event: n.ReasoningDone) -> bytes:
        if event.redacted:
            data = event.encrypted or event.signature or ""
            out, _ = self._start_block("redacted", {"type": "redacted_thinking", "data": data})
            return out + self._close()
        out = b""
        if self._open is None or self._open[0] != "thinking":
            out, _ = self._start_block("thinking", dict(_THINKING))
        assert self._open is not None
        if event.signature:
            delta = {"type": "signature_delta", "signature": event.signature}
            out += _event("content_block_delta", index=self._open[1], delta=delta)
        return out + self._close()

    def _tool_delta(self, event: n.ToolCallDelta) -> bytes:
        index = self._tools.get(event.index)
        if index is None or not event.arguments:
            return b""
        delta = {"type": "input_json_delta", "partial_json": event.arguments}
        return _event("content_block_delta", index=index, delta=delta)

    def feed(self, event: n.Event) -> bytes:
        """The bytes for one event (possibly none)."""
        if isinstance(event, n.Start):
            return self._message_start(event)
        if isinstance(event, n.TextDelta) and event.text:
            text = {"type": "text_delta", "text": event.text}
            return self._delta("text", {"type": "text", "text": ""}, text)
        if isinstance(event, n.ReasoningDelta) and event.text:
            thinking = {"type": "thinking_delta", "thinking": event.text}
            return self._delta("thinking", dict(_THINKING), thinking)
        if isinstance(event, n.ReasoningDone):
            return self._reasoning_done(event)
        if isinstance(event, n.ToolCallStart):
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": event.call_id,
                "name": event.name,
                "input": {},
            }
            out, index = self._start_block("tool_use", block)
            self._tools[event.index] = index
            return out
        if isinstance(event, n.ToolCallDelta):
            return self._tool_delta(event)
        if isinstance(event, n.RefusalDelta):
            self._refusal += event.text
        elif isinstance(event, n.UsageUpdate):
            self._usage = event.usage
        elif isinstance(event, n.Finish):
            return self._finish(event)
        return b""

    def _finish(self, event: n.Finish) -> bytes:
        if event.usage is not None:
            self._usage = event.usage
        delta = {
            "stop_reason": STOPS[event.stop_reason],
            "stop_sequence": None,
            "stop_details": _stop_details(self._refusal),
        }
        return self._close() + _event(
            "message_delta", delta=delta, usage=anthropic_usage(self._usage)
        )

    def close(self) -> bytes:
        """`message_stop`."""
        return self._close() + _event("message_stop")

"""Neutral responses and stream events rendered as Chat Completions."""

from __future__ import annotations

from typing import Any

import orjson

from edge.errors import GatewayError, error_body
from edge.sse import encode
from edge.translate import neutral as n
from edge.usage import Usage

FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "stop",
    "pause": "stop",
}
DONE = b"data: [DONE]\n\n"


def chat_usage(usage: Usage) -> dict[str, Any]:
    """Usage in the Chat Completions shape."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def render_chat_response(resp: n.Response) -> dict[str, Any]:
    """A whole `chat.completion` object."""
    text: list[str] = []
    refusal: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in resp.items:
        if isinstance(item, n.Message):
            text.append(item.text)
            if item.refusal:
                refusal.append(item.refusal)
        elif isinstance(item, n.ToolCall):
            calls.append(
                {
                    "id": item.call_id,
                    "type": "function",
                    "function": {"name": item.name, "arguments": item.arguments},
                }
            )
        elif isinstance(item, n.Reasoning):
            reasoning.append(item.text or "\n".join(item.summary))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(text) if text or not calls else None,
        "refusal": "".join(refusal) or None,
        "annotations": [],
    }
    if calls:
        message["tool_calls"] = calls
    if any(reasoning):
        message["reasoning_content"] = "".join(reasoning)
    return {
        "id": resp.id,
        "object": "chat.completion",
        "created": resp.created,
        "model": resp.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": FINISH[resp.stop_reason],
            }
        ],
        "usage": chat_usage(resp.usage),
    }


def chat_stream_error(err: GatewayError) -> bytes:
    """The terminal error chunk of a chat stream (the OpenAI SDK raises on it)."""
    return encode(orjson.dumps(error_body("openai", err)))


class ChatStreamRenderer:
    """Turns neutral events into `chat.completion.chunk` SSE events, then `[DONE]`."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.id = ""
        self.model = model
        self.created = 0
        self.include_usage = include_usage
        self.usage: Usage | None = None
        self._started = False
        self._tool_indexes: dict[int, int] = {}

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        return encode(orjson.dumps(chunk))

    def feed(self, event: n.Event) -> bytes:
        """The bytes to send for one event (possibly none)."""
        if isinstance(event, n.Start):
            self.id, self.created = event.id, event.created
            self.model = event.model or self.model
            self._started = True
            return self._chunk({"role": "assistant", "content": "", "refusal": None})
        if isinstance(event, n.TextDelta):
            return self._chunk({"content": event.text}) if event.text else b""
        if isinstance(event, n.RefusalDelta):
            return self._chunk({"refusal": event.text})
        if isinstance(event, n.ReasoningDelta):
            return self._chunk({"reasoning_content": event.text}) if event.text else b""
        if isinstance(event, n.ToolCallStart):
            position = self._tool_indexes.setdefault(event.index, len(self._tool_indexes))
            call = {
                "index": position,
                "id": event.call_id,
                "type": "function",
                "function": {"name": event.name, "arguments": ""},
            }
            return self._chunk({"tool_calls": [call]})
        if isinstance(event, n.ToolCallDelta):
            position = self._tool_indexes.get(event.index, event.index)
            call = {"index": position, "function": {"arguments": event.arguments}}
            return self._chunk({"tool_calls": [call]}) if event.arguments else b""
        if isinstance(event, n.UsageUpdate):
            self.usage = event.usage
            return b""
        if isinstance(event, n.Finish):
            if event.usage is not None:
                self.usage = event.usage
            return self._chunk({}, FINISH[event.stop_reason])
        return b""

    def close(self) -> bytes:
        """The usage chunk (when asked for) and `[DONE]`."""
        out = b""
        if self.include_usage:
            chunk = {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": chat_usage(self.usage or Usage()),
            }
            out += encode(orjson.dumps(chunk))
        return out + DONE

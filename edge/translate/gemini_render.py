"""Neutral responses and stream events rendered as Gemini `GenerateContentResponse`s."""

from __future__ import annotations

from typing import Any

import orjson

from edge.errors import GatewayError, error_body
from edge.translate import neutral as n
from edge.translate.jsontext import tool_input
from edge.usage import Usage

FINISH = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
    "refusal": "SAFETY",
    "pause": "STOP",
}


def gemini_usage(usage: Usage) -> dict[str, Any]:
    """`usageMetadata`: candidates exclude thoughts, which are counted apart."""
    out: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(0, usage.output_tokens - usage.reasoning_tokens),
        "totalTokenCount": usage.total,
    }
    if usage.reasoning_tokens:
        out["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_tokens:
        out["cachedContentTokenCount"] = usage.cached_tokens
    return out


def _call_part(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"functionCall": {"id": call_id, "name": name, "args": tool_input(arguments)}}


def _parts(items: list[n.Item]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    signature: str | None = None  # a bare signature rides on the next part, as Gemini sends it
    for item in items:
        part: dict[str, Any] | None = None
        if isinstance(item, n.Reasoning):
            text = item.text or "\n".join(item.summary)
            if text:
                part = {"text": text, "thought": True}
                if item.signature:
                    part["thoughtSignature"] = item.signature
            elif item.signature:
                signature = item.signature
        elif isinstance(item, n.ToolCall):
            part = _call_part(item.call_id, item.name, item.arguments)
        elif isinstance(item, n.Message) and item.text:
            part = {"text": item.text}
        if part is not None:
            if signature is not None and "thoughtSignature" not in part:
                part["thoughtSignature"], signature = signature, None
            parts.append(part)
    if signature is not None:
        parts.append({"text": "", "thoughtSignature": signature})
    return parts


def _candidate(parts: list[dict[str, Any]], finish: str | None, refusal: str) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    if refusal:
        candidate["finishMessage"] = refusal
    return candidate


def render_gemini(resp: n.Response) -> dict[str, Any]:
    """A whole `GenerateContentResponse`."""
    refusal = "".join(i.refusal or "" for i in resp.items if isinstance(i, n.Message))
    return {
        "candidates": [_candidate(_parts(resp.items), FINISH[resp.stop_reason], refusal)],
        "usageMetadata": gemini_usage(resp.usage),
        "modelVersion": resp.model,
        "responseId": resp.id,
    }


def _error_json(err: GatewayError) -> bytes:
    return orjson.dumps(error_body("gemini", err))


class GeminiStreamRenderer:
    """Neutral events as `GenerateContentResponse` chunks: SSE (`alt=sse`) or a JSON array.

    Gemini streams whole function calls, so a call's argument deltas are held until it ends.
    """

    def __init__(self, sse: bool) -> None:
        self.sse = sse
        self.opened = False  # the JSON array's "[" went out
        self._id = ""
        self._model = ""
        self._call: list[str] | None = None  # [id, name, arguments] of the call being built
        self._refusal = ""
        self._usage: Usage | None = None

    def frame(self, obj: dict[str, Any] | bytes) -> bytes:
        """One chunk in the stream's framing."""
        data = obj if isinstance(obj, bytes) else orjson.dumps(obj)
        if self.sse:
            return b"data: " + data + b"\r\n\r\n"
        lead = b"," if self.opened else b"["
        self.opened = True
        return lead + data + b"\n"

    def _chunk(self, parts: list[dict[str, Any]], finish: str | None = None) -> bytes:
        body: dict[str, Any] = {
            "candidates": [_candidate(parts, finish, self._refusal if finish else "")],
            "modelVersion": self._model,
            "responseId": self._id,
        }
        if finish is not None:
            body["usageMetadata"] = gemini_usage(self._usage or Usage())
        return self.frame(body)

    def _flush(self) -> bytes:
        if self._call is None:
            return b""
        call, self._call = self._call, None
        return self._chunk([_call_part(call[0], call[1], call[2])])

    def feed(self, event: n.Event) -> bytes:
        """The bytes for one event (possibly none)."""
        if isinstance(event, n.Start):
            self._id, self._model = event.id, event.model
            return b""
        if isinstance(event, n.ToolCallDelta):
            if self._call is not None:
                self._call[2] += event.arguments
            return b""
        out = self._flush()
        if isinstance(event, n.TextDelta) and event.text:
            out += self._chunk([{"text": event.text}])
        elif isinstance(event, n.ReasoningDelta) and event.text:
            out += self._chunk([{"text": event.text, "thought": True}])
        elif isinstance(event, n.ReasoningDone) and (event.signature or event.encrypted):
            signature = event.signature or event.encrypted
            out += self._chunk([{"text": "", "thought": True, "thoughtSignature": signature}])
        elif isinstance(event, n.ToolCallStart):
            self._call = [event.call_id, event.name, ""]
        elif isinstance(event, n.RefusalDelta):
            self._refusal += event.text
        elif isinstance(event, n.UsageUpdate):
            self._usage = event.usage
        elif isinstance(event, n.Finish):
            self._usage = event.usage or self._usage
            out += self._chunk([], FINISH[event.stop_reason])
        return out

    def close(self) -> bytes:
        """The end of the stream (the JSON array's closing bracket)."""
        out = self._flush()
        if self.sse:
            return out
        return out + (b"]" if self.opened else b"[]")

    def error(self, err: GatewayError) -> bytes:
        """The terminal error, in this stream's framing."""
        out = self.frame(_error_json(err))
        return out if self.sse else out + b"]"


def gemini_error_event(err: GatewayError) -> bytes:
    """The terminal error of an SSE stream (the relay's and the default framing)."""
    return b"data: " + _error_json(err) + b"\r\n\r\n"

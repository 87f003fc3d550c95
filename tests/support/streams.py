"""Synthetic provider streams of N one-word deltas, in each provider API's wire format, and the
same API's in-band error event (an error a provider sends inside a started stream)."""

from __future__ import annotations

from typing import Literal

import orjson

from tests.bench.payloads import stream_events

Wire = Literal["chat", "responses", "messages", "gemini"]
# Where each provider API is served (below the fake's root).
PATHS: dict[Wire, str] = {
    "chat": "/v1/chat/completions",
    "responses": "/v1/responses",
    "messages": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
}


def _gemini(n: int) -> list[bytes]:
    def chunk(text: str, finish: str | None = None, out: int = 0) -> bytes:
        candidate: dict[str, object] = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        }
        if finish:
            candidate["finishReason"] = finish
        usage = {"promptTokenCount": 12, "candidatesTokenCount": out, "totalTokenCount": 12 + out}
        body = {"candidates": [candidate], "usageMetadata": usage, "responseId": "r1"}
        return b"data: " + orjson.dumps(body) + b"\r\n\r\n"

    return [chunk("lorem ", out=i + 1) for i in range(n - 1)] + [chunk("lorem ", "STOP", n)]


def frames(wire: Wire, n: int) -> list[bytes]:
    """A complete stream with `n` content deltas (and the usage the API reports)."""
    if wire == "gemini":
        return _gemini(n)
    return stream_events(wire, n)


def in_band_error(wire: Wire) -> bytes:
    """The event a provider ends a started stream with when it fails."""
    message = {"message": "The server had an error while processing your request.", "code": None}
    if wire == "chat":
        return b"data: " + orjson.dumps({"error": {**message, "type": "server_error"}}) + b"\n\n"
    if wire == "responses":
        body = {"type": "error", "sequence_number": 9, **message, "code": "server_error"}
        return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"
    if wire == "messages":
        err = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return b"event: error\ndata: " + orjson.dumps(err) + b"\n\n"
    err = {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}
    return b"data: " + orjson.dumps(err) + b"\r\n\r\n"

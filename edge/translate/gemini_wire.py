"""Gemini wire facts for the relay: where usage is, and how a stream ends."""

from __future__ import annotations

import orjson

from edge.sse import SSEEvent
from edge.translate.gemini_render import gemini_error_event
from edge.upstream.wire import WireSpec
from edge.usage import Usage, from_gemini


def _event_usage(event: SSEEvent) -> Usage | None:
    if '"usageMetadata"' not in event.text:
        return None
    try:
        chunk = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return None
    usage = from_gemini(chunk.get("usageMetadata")) if isinstance(chunk, dict) else None
    # Early chunks may carry only a traffic type; they must not erase counts already seen.
    return usage if usage is not None and (usage.input_tokens or usage.output_tokens) else None


def _body_usage(body: object) -> Usage | None:
    if isinstance(body, list):  # a non-SSE stream: a JSON array of chunks
        body = next((c for c in reversed(body) if isinstance(c, dict) and "usageMetadata" in c), {})
    return from_gemini(body.get("usageMetadata")) if isinstance(body, dict) else None


def _terminal(event: SSEEvent) -> bool:
    # Gemini has no end marker: the chunk with a finish reason (or an error) is the last.
    if '"finishReason"' in event.text:
        return True
    return '{"error"' in event.text and event.data.startswith('{"error"')


def gemini_wire() -> WireSpec:
    """The spec for relayed Gemini calls."""
    return WireSpec(
        usage_from_body=_body_usage,
        usage_from_event=_event_usage,
        is_terminal=_terminal,
        stream_error=gemini_error_event,
    )

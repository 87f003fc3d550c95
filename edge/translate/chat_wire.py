"""Chat Completions wire facts for the relay: where usage is, how a stream ends."""

from __future__ import annotations

import orjson

from edge.sse import SSEEvent
from edge.translate.chat_render import chat_stream_error
from edge.upstream.wire import WireSpec
from edge.usage import Usage, from_openai_chat


def _event_usage(event: SSEEvent) -> Usage | None:
    # Most chunks carry `"usage":null`; only parse the ones that can hold a usage object.
    if '"usage":{' not in event.text and '"usage": {' not in event.text:
        return None
    try:
        chunk = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return None
    return from_openai_chat(chunk.get("usage")) if isinstance(chunk, dict) else None


def _usage_only(event: SSEEvent) -> bool:
    if '"choices":[]' not in event.text and '"choices": []' not in event.text:
        return False
    try:
        chunk = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(chunk, dict) and chunk.get("choices") == [] and bool(chunk.get("usage"))


def _terminal(event: SSEEvent) -> bool:
    """`[DONE]`, or an in-band error chunk the provider ended with (parsed only if it may be)."""
    if event.is_done:
        return True
    return '{"error"' in event.text and event.data.startswith('{"error"')


def _body_usage(body: object) -> Usage | None:
    return from_openai_chat(body.get("usage")) if isinstance(body, dict) else None


def chat_wire(hide_usage_chunk: bool) -> WireSpec:
    """The spec; `hide_usage_chunk` when the gateway added `include_usage` on its own."""
    return WireSpec(
        usage_from_body=_body_usage,
        usage_from_event=_event_usage,
        is_terminal=_terminal,
        stream_error=chat_stream_error,
        hide_event=_usage_only if hide_usage_chunk else None,
    )

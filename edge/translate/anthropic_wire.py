"""Anthropic Messages wire facts for the relay: usage, the end of a stream, malformed streams."""

from __future__ import annotations

from typing import Any

import orjson

from edge.sse import SSEEvent
from edge.translate.anthropic_render import messages_stream_error
from edge.translate.upstream_http import malformed
from edge.upstream.wire import WireSpec
from edge.usage import Usage, from_anthropic

_USAGE_EVENTS = ("message_start", "message_delta")


class _StreamWatch:
    """Per-stream state: cumulative usage, and a check that there is one message only."""

    def __init__(self) -> None:
        self._usage: dict[str, Any] = {}
        self._started = False

    def usage(self, event: SSEEvent) -> Usage | None:
        """Usage after this event; raises on a second message_start (a spliced stream)."""
        if event.event not in _USAGE_EVENTS:
            return None
        if event.event == "message_start":
            if self._started:
                # Raised before the event is relayed, so the client never sees it.
                raise malformed("a second message_start in one stream")
            self._started = True
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        holder = data.get("message") if event.event == "message_start" else data
        usage = holder.get("usage") if isinstance(holder, dict) else None
        if isinstance(usage, dict):
            # message_delta counts are cumulative and may omit fields message_start gave.
            self._usage.update({k: v for k, v in usage.items() if v is not None})
        return from_anthropic(self._usage)


def _body_usage(body: object) -> Usage | None:
    return from_anthropic(body.get("usage")) if isinstance(body, dict) else None


def _terminal(event: SSEEvent) -> bool:
    return event.event in ("message_stop", "error")


def messages_wire() -> WireSpec:
    """A spec for one relayed Messages call (it keeps per-stream state)."""
    watch = _StreamWatch()
    return WireSpec(
        usage_from_body=_body_usage,
        usage_from_event=watch.usage,
        is_terminal=_terminal,
        stream_error=messages_stream_error,
    )

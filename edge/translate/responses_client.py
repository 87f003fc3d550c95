"""Responses as a client API of the neutral model, for `serve`: bytes out, the final object kept."""

from __future__ import annotations

from typing import Any

import orjson

from edge.errors import GatewayError
from edge.sse import encode
from edge.translate import neutral as n
from edge.translate.responses_object import Shell
from edge.translate.responses_render import ResponsesEvents, render_whole


def sse_bytes(events: list[dict[str, Any]]) -> bytes:
    """Events as SSE, each `event: <type>` + `data: <json>`, joined for one write."""
    return b"".join(encode(orjson.dumps(e), e["type"]) for e in events)


class _Renderer:
    def __init__(self, events: ResponsesEvents) -> None:
        self._events = events

    def feed(self, event: n.Event) -> bytes:
        """SSE bytes for one neutral event."""
        return sse_bytes(self._events.feed(event))

    def close(self) -> bytes:
        """The closing events, ending with `response.completed` or `.incomplete`."""
        return sse_bytes(self._events.finish())


class ResponsesClient:
    """Renders one response; `final` holds the complete object once it is known."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.events = ResponsesEvents(shell)
        self._whole: dict[str, Any] | None = None

    @property
    def final(self) -> dict[str, Any] | None:
        """The complete object (after a whole answer, or a stream's terminal event)."""
        return self._whole or self.events.final

    def render_response(self, resp: n.Response) -> bytes:
        """A whole response object."""
        self._whole = render_whole(self.shell, resp)
        return orjson.dumps(self._whole)

    def stream_renderer(self) -> _Renderer:
        """The stream renderer."""
        return _Renderer(self.events)

    def stream_error(self, err: GatewayError) -> bytes:
        """`error` then `response.failed`."""
        return sse_bytes(self.events.fail(err))

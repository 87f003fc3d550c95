"""The Anthropic Messages provider adapter."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from edge.sse import SSEEvent
from edge.translate import neutral as n
from edge.translate.anthropic_inbound import AnthropicStreamDecoder, message_response
from edge.translate.anthropic_outbound import messages_body
from edge.translate.upstream import StreamCall, UpstreamContext
from edge.translate.upstream_http import (
    Forwarded,
    event_json,
    post_json,
    read_json,
    sse_events,
)
from edge.upstream.auth import upstream_headers
from edge.upstream.client import interrupted
from edge.upstream.endpoints import for_vertex_claude, messages_call_url


def messages_url(base_url: str | None) -> str:
    """The Messages endpoint under the API root (as the Anthropic SDK builds it)."""
    return f"{base_url}/v1/messages"


async def decode_messages_stream(
    source: AsyncIterator[SSEEvent], json_tool: bool = False
) -> AsyncGenerator[n.Event, None]:
    """Neutral events from a Messages SSE stream; it must end with message_stop."""
    decoder = AnthropicStreamDecoder(json_tool)
    async for event in source:
        data = event_json(event)
        for out in decoder.feed(event.event or str(data.get("type")), data):
            yield out
        if decoder.done:
            return
    raise interrupted()


def _target(
    up: UpstreamContext, model: str, body: dict[str, Any], stream: bool
) -> tuple[str, dict[str, Any]]:
    """The URL and body for Anthropic itself or for Claude on Vertex AI."""
    provider = up.route.provider
    url = messages_call_url(provider, model, stream)
    return url, (for_vertex_claude(body) if provider.kind == "vertex" else body)


class AnthropicUpstream:
    """Speaks Anthropic Messages to the provider."""

    async def complete(self, up: UpstreamContext, req: n.Request) -> tuple[n.Response, Forwarded]:
        """A whole answer."""
        body, json_tool = messages_body(req, up.route.model, stream=False)
        url, body = _target(up, req.model, body, stream=False)
        headers = upstream_headers(up.route.provider, {})
        async with post_json(up, url, headers, body) as (resp, passed):
            return message_response(await read_json(resp, up.body_limit), json_tool), passed

    @contextlib.asynccontextmanager
    async def stream(self, up: UpstreamContext, req: n.Request) -> AsyncIterator[StreamCall]:
        """A streamed answer."""
        body, json_tool = messages_body(req, up.route.model, stream=True)
        url, body = _target(up, req.model, body, stream=True)
        headers = upstream_headers(up.route.provider, {})
        async with post_json(up, url, headers, body) as (resp, passed):
            events = decode_messages_stream(sse_events(resp, up.body_limit), json_tool)
            async with contextlib.aclosing(events):
                yield StreamCall(events=events, headers=passed)

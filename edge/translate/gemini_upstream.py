"""The Gemini provider adapter (`generateContent` and `streamGenerateContent?alt=sse`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from urllib.parse import quote

from edge.sse import SSEEvent
from edge.translate import neutral as n
from edge.translate.gemini_inbound import GeminiStreamDecoder, gemini_response
from edge.translate.gemini_outbound import gemini_body
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
from edge.upstream.endpoints import gemini_method_url


def gemini_url(base_url: str | None, model: str, method: str, sse: bool) -> str:
    """A model method's URL under the API root (as the Google SDK builds it)."""
    url = f"{base_url}/v1beta/models/{quote(model, safe='/.-_')}:{method}"
    return f"{url}?alt=sse" if sse else url


async def decode_gemini_stream(source: AsyncIterator[SSEEvent]) -> AsyncGenerator[n.Event, None]:
    """Neutral events from a Gemini SSE stream; it must reach a finish reason."""
    decoder = GeminiStreamDecoder()
    async for event in source:
        for out in decoder.feed(event_json(event)):
            yield out
    if not decoder.finished:
        raise interrupted()
    for out in decoder.finish():
        yield out


def first_call_only(resp: n.Response) -> n.Response:
    """`parallel_tool_calls: false` on Gemini, which has no such switch: the turn keeps its
    first function call only, as a model told to call one tool at a time would have made."""
    seen = False
    items: list[n.Item] = []
    for item in resp.items:
        if isinstance(item, n.ToolCall):
            if seen:
                continue
            seen = True
        items.append(item)
    resp.items = items
    return resp


async def first_call_events(events: AsyncIterator[n.Event]) -> AsyncGenerator[n.Event, None]:
    """The stream form of `first_call_only`: the second and later calls' events are dropped."""
    async for event in events:
        if isinstance(event, n.ToolCallStart | n.ToolCallDelta) and event.index > 0:
            continue
        yield event


class GeminiUpstream:
    """Speaks the Gemini API to the provider."""

    async def complete(self, up: UpstreamContext, req: n.Request) -> tuple[n.Response, Forwarded]:
        """A whole answer."""
        url = gemini_method_url(up.route.provider, req.model, "generateContent", sse=False)
        headers = upstream_headers(up.route.provider, {})
        async with post_json(up, url, headers, gemini_body(req)) as (resp, passed):
            answer = gemini_response(await read_json(resp, up.body_limit))
            return (first_call_only(answer) if req.parallel_tool_calls is False else answer), passed

    @contextlib.asynccontextmanager
    async def stream(self, up: UpstreamContext, req: n.Request) -> AsyncIterator[StreamCall]:
        """A streamed answer."""
        url = gemini_method_url(up.route.provider, req.model, "streamGenerateContent", sse=True)
        headers = upstream_headers(up.route.provider, {})
        async with post_json(up, url, headers, gemini_body(req)) as (resp, passed):
            events = decode_gemini_stream(sse_events(resp, up.body_limit))
            if req.parallel_tool_calls is False:
                events = first_call_events(events)
            async with contextlib.aclosing(events):
                yield StreamCall(events=events, headers=passed)

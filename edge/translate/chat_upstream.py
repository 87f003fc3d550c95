"""The Chat Completions provider adapter: OpenAI and every OpenAI-compatible server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

from edge.sse import SSEEvent
from edge.translate import neutral as n
from edge.translate.chat_inbound import ChatStreamDecoder, chat_response
from edge.translate.chat_outbound import chat_body
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
from edge.upstream.endpoints import chat_url


def _url(up: UpstreamContext) -> str:
    return chat_url(up.route.provider, up.route.model.upstream)


async def decode_chat_stream(source: AsyncIterator[SSEEvent]) -> AsyncGenerator[n.Event, None]:
    """Neutral events from a Chat Completions SSE stream."""
    decoder = ChatStreamDecoder()
    async for event in source:
        if event.is_done:
            break
        for out in decoder.feed(event_json(event)):
            yield out
    else:
        # Some compatible servers end without `[DONE]`; a finish reason is then enough.
        if not decoder.finished:
            raise interrupted()
    for out in decoder.finish():
        yield out


class ChatUpstream:
    """Speaks Chat Completions to the provider."""

    async def complete(self, up: UpstreamContext, req: n.Request) -> tuple[n.Response, Forwarded]:
        """A whole answer."""
        body = chat_body(req, up.route.provider, stream=False)
        headers = upstream_headers(up.route.provider, {})
        async with post_json(up, _url(up), headers, body) as (resp, passed):
            return chat_response(await read_json(resp, up.body_limit)), passed

    @contextlib.asynccontextmanager
    async def stream(self, up: UpstreamContext, req: n.Request) -> AsyncIterator[StreamCall]:
        """A streamed answer."""
        body = chat_body(req, up.route.provider, stream=True)
        headers = upstream_headers(up.route.provider, {})
        async with post_json(up, _url(up), headers, body) as (resp, passed):
            events = decode_chat_stream(sse_events(resp, up.body_limit))
            async with contextlib.aclosing(events):
                yield StreamCall(events=events, headers=passed)

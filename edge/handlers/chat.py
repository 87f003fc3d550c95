"""POST /v1/chat/completions."""

from __future__ import annotations

from aiohttp import web

from edge.context import RequestContext, ctx_of
from edge.errors import GatewayError
from edge.fallback import without_gateway_options
from edge.handlers.chain import answer_by_chain
from edge.handlers.translated import json_bytes
from edge.relay import relay
from edge.routing import Route
from edge.translate import neutral as n
from edge.translate.chat_render import ChatStreamRenderer, chat_stream_error, render_chat_response
from edge.translate.chat_request import parse_chat_request, wants_stream_usage
from edge.translate.chat_wire import chat_wire
from edge.translate.rewrite import add_field, set_model
from edge.upstream.auth import upstream_headers
from edge.upstream.endpoints import chat_url


class ChatClient:
    """Chat Completions as a client API of the neutral model."""

    def __init__(self, include_usage: bool) -> None:
        self._include_usage = include_usage

    def render_response(self, resp: n.Response) -> bytes:
        """A `chat.completion` body."""
        return json_bytes(render_chat_response(resp))

    def stream_renderer(self) -> ChatStreamRenderer:
        """A chunk renderer."""
        return ChatStreamRenderer(model="", include_usage=self._include_usage)

    def stream_error(self, err: GatewayError) -> bytes:
        """The terminal error chunk."""
        return chat_stream_error(err)


async def _passthrough(
    request: web.Request, ctx: RequestContext, route: Route
) -> web.StreamResponse:
    assert ctx.body is not None
    raw, payload = without_gateway_options(ctx.body, ctx.payload)
    body = set_model(raw, payload, route.model.upstream)
    hide_usage = False
    if payload.get("stream") is True and not wants_stream_usage(payload):
        # Usage is needed for quotas: ask for it, and keep the extra chunk from the client.
        options = payload.get("stream_options")
        options = (
            {**options, "include_usage": True}
            if isinstance(options, dict)
            else {"include_usage": True}
        )
        body = add_field(
            body, {**payload, "model": route.model.upstream}, "stream_options", options
        )
        hide_usage = True
    url = chat_url(route.provider, route.model.upstream)
    headers = upstream_headers(route.provider, request.headers)
    return await relay(request, ctx, url, headers, body, chat_wire(hide_usage))


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """OpenAI Chat Completions, to any model in the catalog, with fallbacks."""
    ctx = ctx_of(request)
    client = ChatClient(wants_stream_usage(ctx.payload))
    return await answer_by_chain(request, ctx, "chat", _passthrough, parse_chat_request, client)

"""POST /v1/chat/completions."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from edge.appkeys import SETTINGS
from edge.context import RequestContext, ctx_of
from edge.errors import GatewayError
from edge.fallback import fallback_chain, with_fallbacks, without_gateway_options
from edge.relay import relay
from edge.routing import Route
from edge.translate import neutral as n
from edge.translate.chat_render import ChatStreamRenderer, chat_stream_error, render_chat_response
from edge.translate.chat_request import parse_chat_request, wants_stream_usage
from edge.translate.chat_wire import chat_wire
from edge.translate.rewrite import add_field, set_model
from edge.translate.serve import json_bytes, serve
from edge.upstream.auth import upstream_headers


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
    url = f"{route.provider.base_url}/chat/completions"
    headers = upstream_headers(route.provider, request.headers)
    return await relay(request, ctx, url, headers, body, chat_wire(hide_usage))


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """OpenAI Chat Completions, to any model in the catalog, with fallbacks."""
    ctx = ctx_of(request)
    payload = ctx.payload
    catalog = request.app[SETTINGS].catalog
    routes = fallback_chain(catalog, payload.get("model"), payload, "chat")
    parsed: list[n.Request] = []  # parsed once, and only if some route needs translation

    async def attempt(route: Route) -> web.StreamResponse:
        """Answer with one model of the chain."""
        if route.passthrough:
            return await _passthrough(request, ctx, route)
        if not parsed:
            parsed.append(parse_chat_request(payload))
        req = dataclasses.replace(parsed[0], model=route.model.upstream)
        return await serve(request, ctx, route, req, ChatClient(wants_stream_usage(payload)))

    return await with_fallbacks(ctx, routes, attempt)

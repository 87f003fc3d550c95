"""POST /v1/messages: Anthropic Messages, to any model in the catalog."""

from __future__ import annotations

import orjson
from aiohttp import web

from edge.context import RequestContext, ctx_of
from edge.errors import GatewayError
from edge.fallback import without_gateway_options
from edge.handlers.chain import answer_by_chain
from edge.handlers.translated import json_bytes
from edge.relay import relay
from edge.routing import Route
from edge.translate import neutral as n
from edge.translate.anthropic_render import (
    MessagesStreamRenderer,
    messages_stream_error,
    render_message,
)
from edge.translate.anthropic_request import parse_messages_request
from edge.translate.anthropic_wire import messages_wire
from edge.translate.rewrite import set_model
from edge.upstream.auth import upstream_headers
from edge.upstream.endpoints import for_vertex_claude, messages_call_url
from edge.upstream.signing import CREDENTIALS


class MessagesClient:
    """Anthropic Messages as a client API of the neutral model."""

    def render_response(self, resp: n.Response) -> bytes:
        """A `message` body."""
        return json_bytes(render_message(resp))

    def stream_renderer(self) -> MessagesStreamRenderer:
        """An event renderer."""
        return MessagesStreamRenderer()

    def stream_error(self, err: GatewayError) -> bytes:
        """The terminal `error` event."""
        return messages_stream_error(err)


async def _passthrough(
    request: web.Request, ctx: RequestContext, route: Route
) -> web.StreamResponse:
    assert ctx.body is not None
    raw, payload = without_gateway_options(ctx.body, ctx.payload)
    if route.provider.kind == "vertex":
        body = orjson.dumps(for_vertex_claude(payload))  # the model is named by the URL
    else:
        body = set_model(raw, payload, route.model.upstream)
    stream = payload.get("stream") is True
    url = messages_call_url(route.provider, route.model.upstream, stream)
    # anthropic-version and anthropic-beta are the client's protocol choices: they go along.
    headers = upstream_headers(route.provider, request.headers)
    signer = request.app[CREDENTIALS].signer_for(route.provider)
    return await relay(request, ctx, url, headers, body, messages_wire(), signer)


async def messages(request: web.Request) -> web.StreamResponse:
    """Anthropic Messages, stream and not, with fallbacks."""
    ctx = ctx_of(request)
    return await answer_by_chain(
        request, ctx, "messages", _passthrough, parse_messages_request, MessagesClient()
    )

"""POST /v1beta/models/{model}:generateContent and :streamGenerateContent, to any model."""

from __future__ import annotations

from aiohttp import web

from edge.context import RequestContext, ctx_of
from edge.errors import GatewayError
from edge.fallback import with_fallbacks, without_gateway_options
from edge.handlers.translated import json_bytes, serve
from edge.relay import relay
from edge.route_table import admitted_routes, gemini_target
from edge.routing import Route
from edge.translate import neutral as n
from edge.translate.gemini_render import GeminiStreamRenderer, render_gemini
from edge.translate.gemini_request import parse_gemini_request
from edge.translate.gemini_wire import gemini_wire
from edge.upstream.auth import upstream_headers
from edge.upstream.endpoints import gemini_method_url
from edge.upstream.signing import CREDENTIALS


class GeminiClient:
    """The Gemini API as a client API of the neutral model."""

    def __init__(self, sse: bool) -> None:
        self._renderer = GeminiStreamRenderer(sse)

    def render_response(self, resp: n.Response) -> bytes:
        """A `GenerateContentResponse` body."""
        return json_bytes(render_gemini(resp))

    def stream_renderer(self) -> GeminiStreamRenderer:
        """The chunk renderer (one per request, so its error knows the framing)."""
        return self._renderer

    def stream_error(self, err: GatewayError) -> bytes:
        """The terminal error chunk."""
        return self._renderer.error(err)


async def _passthrough(
    request: web.Request, ctx: RequestContext, route: Route, method: str, sse: bool
) -> web.StreamResponse:
    assert ctx.body is not None
    raw, _ = without_gateway_options(ctx.body, ctx.payload)
    url = gemini_method_url(route.provider, route.model.upstream, method, sse)
    headers = upstream_headers(route.provider, request.headers)
    signer = request.app[CREDENTIALS].signer_for(route.provider)
    return await relay(request, ctx, url, headers, raw, gemini_wire(), signer)


async def generate(request: web.Request) -> web.StreamResponse:
    """Gemini generateContent / streamGenerateContent (`?alt=sse` or a JSON array)."""
    ctx = ctx_of(request)
    payload = ctx.payload
    if not isinstance(payload, dict):
        raise GatewayError(400, "Request body must be a JSON object.")
    _, method, stream = gemini_target(request)
    sse = request.query.get("alt") == "sse"
    routes = admitted_routes(ctx.routes)

    async def attempt(route: Route) -> web.StreamResponse:
        """Answer with one model of the chain."""
        if route.passthrough:
            return await _passthrough(request, ctx, route, method, sse)
        req = parse_gemini_request(payload, route.model.upstream, stream)
        content_type = "text/event-stream" if sse else "application/json"
        return await serve(request, ctx, route, req, GeminiClient(sse), content_type)

    return await with_fallbacks(ctx, routes, attempt)

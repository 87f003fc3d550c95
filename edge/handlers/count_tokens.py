"""Token counting: Anthropic's `POST /v1/messages/count_tokens` and Gemini's `:countTokens`, on
any model callable from that API. The provider's own count where it has one (relayed as it is
when the client speaks the provider's API, else asked in the provider's API), `local/echo`'s own
count, else the documented local estimate (`edge.translate.token_estimate`).

A count is a call to the provider: it is admitted (request rates, concurrency, a blocked
account) and settled as one request that used no tokens."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from aiohttp import web

from edge.context import RequestContext, ctx_of
from edge.fallback import with_fallbacks, without_gateway_options
from edge.handlers.companion import (
    json_answer,
    no_tokens,
    object_payload,
    upstream_context,
    with_usage,
)
from edge.relay import relay
from edge.route_table import COUNT_METHODS, admitted_routes, gemini_target
from edge.routing import Route
from edge.translate import neutral as n
from edge.translate.anthropic_request import parse_messages_request
from edge.translate.anthropic_wire import messages_wire
from edge.translate.count_upstream import count_tokens, messages_count_url
from edge.translate.gemini_request import parse_gemini_request
from edge.translate.gemini_upstream import gemini_url
from edge.translate.gemini_wire import gemini_wire
from edge.translate.rewrite import set_model
from edge.upstream.auth import upstream_headers
from edge.usage import Usage

# Google's JSON name and its proto name for the wrapped request.
_WRAPPED = ("generateContentRequest", "generate_content_request")


def _messages_request(payload: dict[str, Any]) -> n.Request:
    """A count body as a neutral request: it names no `max_tokens` (nothing is generated), which
    the Messages parser requires."""
    req = parse_messages_request({**payload, "max_tokens": 1})
    return dataclasses.replace(req, max_output_tokens=None)


async def _relay_messages(
    request: web.Request, ctx: RequestContext, route: Route, payload: dict[str, Any]
) -> web.StreamResponse:
    assert ctx.body is not None
    raw, rest = without_gateway_options(ctx.body, payload)
    body = set_model(raw, rest, route.model.upstream)
    url = messages_count_url(route.provider.base_url)
    headers = upstream_headers(route.provider, request.headers)
    return await relay(request, ctx, url, headers, body, with_usage(messages_wire(), no_tokens))


async def count_message_tokens(request: web.Request) -> web.StreamResponse:
    """POST /v1/messages/count_tokens: `{"input_tokens": N}`."""
    ctx = ctx_of(request)
    routes = admitted_routes(ctx.routes)
    payload = object_payload(ctx)
    parsed: list[n.Request] = []

    async def attempt(route: Route) -> web.StreamResponse:
        """Count on one model of the chain."""
        if route.passthrough:
            return await _relay_messages(request, ctx, route, payload)
        if not parsed:
            parsed.append(_messages_request(payload))
        req = dataclasses.replace(parsed[0], model=route.model.upstream)
        count, passed = await count_tokens(upstream_context(request, ctx, route), req)
        ctx.usage = Usage()
        return json_answer(ctx, {"input_tokens": count}, passed)

    return await with_fallbacks(ctx, routes, attempt)


def _wrapped(payload: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The `generateContentRequest` a count body wraps (and its field name), else the body."""
    for name in _WRAPPED:
        inner = payload.get(name)
        if isinstance(inner, dict):
            return name, inner
    return None, payload


def _gemini_body(raw: bytes, payload: dict[str, Any], upstream: str) -> bytes:
    """The body for Gemini, a wrapped request naming the provider's model (Google refuses a
    model that differs from the URL's); bytes untouched when it already does."""
    name, inner = _wrapped(payload)
    want = f"models/{upstream}"
    if name is None or inner.get("model") == want:
        return raw
    return orjson.dumps({**payload, name: {**inner, "model": want}})


async def count_gemini_tokens(request: web.Request) -> web.StreamResponse:
    """POST /v1beta/models/{model}:countTokens: `{"totalTokens": N}`."""
    ctx = ctx_of(request)
    routes = admitted_routes(ctx.routes)
    payload = object_payload(ctx)
    gemini_target(request, COUNT_METHODS)
    parsed: list[n.Request] = []

    async def attempt(route: Route) -> web.StreamResponse:
        """Count on one model of the chain."""
        if route.passthrough:
            assert ctx.body is not None
            raw, rest = without_gateway_options(ctx.body, payload)
            body = _gemini_body(raw, rest, route.model.upstream)
            url = gemini_url(route.provider.base_url, route.model.upstream, "countTokens", False)
            headers = upstream_headers(route.provider, request.headers)
            spec = with_usage(gemini_wire(), no_tokens)
            return await relay(request, ctx, url, headers, body, spec)
        if not parsed:
            parsed.append(parse_gemini_request(_wrapped(payload)[1], route.model.upstream, False))
        req = dataclasses.replace(parsed[0], model=route.model.upstream)
        count, passed = await count_tokens(upstream_context(request, ctx, route), req)
        ctx.usage = Usage()
        return json_answer(ctx, {"totalTokens": count}, passed)

    return await with_fallbacks(ctx, routes, attempt)

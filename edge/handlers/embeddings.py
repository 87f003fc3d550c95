"""Embeddings: OpenAI's `POST /v1/embeddings` and Gemini's `:embedContent` /
`:batchEmbedContents`, on any embedding model. Relayed byte for byte where the provider speaks
the client's API (OpenAI and compatible servers for the first, Gemini for the second), computed
through the provider's own embedding API otherwise, and in process for `local/echo`.

Metered by input tokens like every model call: the provider's `usage.prompt_tokens` where it
reports it, else the local estimate (Gemini reports none for embeddings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from edge.context import ctx_of
from edge.fallback import with_fallbacks, without_gateway_options
from edge.handlers.companion import json_answer, object_payload, upstream_context, with_usage
from edge.relay import relay
from edge.route_table import EMBED_METHODS, admitted_routes, gemini_target
from edge.routing import Route
from edge.translate.chat_wire import chat_wire
from edge.translate.embed_upstream import embed, gemini_input_tokens, openai_embeddings_url
from edge.translate.embeddings import (
    EmbedRequest,
    encoding_format,
    gemini_texts,
    openai_input_estimate,
    parse_gemini_embed,
    parse_openai_embeddings,
    render_gemini,
    render_openai,
)
from edge.translate.gemini_upstream import gemini_url
from edge.translate.gemini_wire import gemini_wire
from edge.translate.rewrite import set_model
from edge.upstream.auth import upstream_headers
from edge.usage import Usage


def _reported_model(route: Route) -> str:
    """The model an answer names: the provider's name for it, as the provider would."""
    return route.model.id if route.provider.kind == "local" else route.model.upstream


def _openai_usage(payload: dict[str, Any]) -> Callable[[Any], Usage]:
    """A relayed answer's usage: `usage.prompt_tokens`, else the estimate of what was sent."""

    def usage(body: Any) -> Usage:
        reported = body.get("usage") if isinstance(body, dict) else None
        tokens = reported.get("prompt_tokens") if isinstance(reported, dict) else None
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            tokens = openai_input_estimate(payload)
        return Usage(input_tokens=tokens)

    return usage


async def create_embeddings(request: web.Request) -> web.StreamResponse:
    """POST /v1/embeddings, with fallbacks."""
    ctx = ctx_of(request)
    routes = admitted_routes(ctx.routes)
    payload = object_payload(ctx)
    encoding = encoding_format(payload)
    parsed: list[EmbedRequest] = []

    async def attempt(route: Route) -> web.StreamResponse:
        """Embed with one model of the chain."""
        if route.passthrough:
            assert ctx.body is not None
            raw, rest = without_gateway_options(ctx.body, payload)
            body = set_model(raw, rest, route.model.upstream)
            url = openai_embeddings_url(route.provider.base_url)
            headers = upstream_headers(route.provider, request.headers)
            spec = with_usage(chat_wire(False), _openai_usage(rest))
            return await relay(request, ctx, url, headers, body, spec)
        if not parsed:
            parsed.append(parse_openai_embeddings(payload))
        result, passed = await embed(upstream_context(request, ctx, route), parsed[0])
        ctx.usage = Usage(input_tokens=result.input_tokens)
        return json_answer(ctx, render_openai(result, _reported_model(route), encoding), passed)

    return await with_fallbacks(ctx, routes, attempt)


def _gemini_body(raw: bytes, payload: dict[str, Any], method: str, upstream: str) -> bytes:
    """A batch whose requests name the provider's model (Google refuses one that differs from
    the URL's); bytes untouched when they already do, and for a single request."""
    want = f"models/{upstream}"
    requests = payload.get("requests")
    if method != "batchEmbedContents" or not isinstance(requests, list):
        return raw
    if all(isinstance(r, dict) and r.get("model") == want for r in requests):
        return raw
    named = [{**r, "model": want} if isinstance(r, dict) else r for r in requests]
    return orjson.dumps({**payload, "requests": named})


async def gemini_embed(request: web.Request) -> web.StreamResponse:
    """POST /v1beta/models/{model}:embedContent and :batchEmbedContents, with fallbacks."""
    ctx = ctx_of(request)
    routes = admitted_routes(ctx.routes)
    payload = object_payload(ctx)
    _, method, _ = gemini_target(request, EMBED_METHODS)
    parsed: list[EmbedRequest] = []

    async def attempt(route: Route) -> web.StreamResponse:
        """Embed with one model of the chain."""
        upstream = route.model.upstream
        if route.provider.kind == "gemini":
            assert ctx.body is not None
            raw, rest = without_gateway_options(ctx.body, payload)
            body = _gemini_body(raw, rest, method, upstream)
            url = gemini_url(route.provider.base_url, upstream, method, sse=False)
            headers = upstream_headers(route.provider, request.headers)
            texts = gemini_texts(rest, method)
            spec = with_usage(gemini_wire(), lambda sent: Usage(gemini_input_tokens(sent, texts)))
            return await relay(request, ctx, url, headers, body, spec)
        if not parsed:
            parsed.append(parse_gemini_embed(payload, method))
        result, passed = await embed(upstream_context(request, ctx, route), parsed[0])
        ctx.usage = Usage(input_tokens=result.input_tokens)
        return json_answer(ctx, render_gemini(result, method), passed)

    return await with_fallbacks(ctx, routes, attempt)

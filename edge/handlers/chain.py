"""Answering one call with its fallback chain: the provider's own API relayed as it is, any
other translated from one parse of the request."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from edge.context import RequestContext
from edge.fallback import with_fallbacks
from edge.handlers.translated import ClientApi, serve
from edge.route_table import admitted_routes
from edge.routing import Route
from edge.translate import neutral as n
from policies.catalog import Endpoint

Passthrough = Callable[[web.Request, RequestContext, Route], Awaitable[web.StreamResponse]]


async def answer_by_chain(
    request: web.Request,
    ctx: RequestContext,
    endpoint: Endpoint,
    passthrough: Passthrough,
    parse: Callable[[Any], n.Request],
    client: ClientApi,
) -> web.StreamResponse:
    """Try each model of the call's chain until one answers (see `edge.fallback`)."""
    payload = ctx.payload
    routes = admitted_routes(ctx.routes)
    parsed: list[n.Request] = []  # parsed once, and only if some route needs translation

    async def attempt(route: Route) -> web.StreamResponse:
        if route.passthrough:
            return await passthrough(request, ctx, route)
        if not parsed:
            parsed.append(parse(payload))
        req = dataclasses.replace(parsed[0], model=route.model.upstream)
        return await serve(request, ctx, route, req, client)

    return await with_fallbacks(ctx, routes, attempt)

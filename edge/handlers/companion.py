"""What the companion endpoints (token counting, embeddings) share: the upstream context of one
attempt, a JSON answer carrying the provider's forwarded headers, and relay specs whose usage
is the endpoint's own."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from aiohttp import web

from edge.appkeys import HTTP, SETTINGS
from edge.context import RequestContext
from edge.errors import GatewayError
from edge.handlers.translated import json_bytes
from edge.routing import Route
from edge.translate.upstream import UpstreamContext
from edge.translate.upstream_http import Forwarded
from edge.upstream.signing import CREDENTIALS
from edge.upstream.wire import WireSpec
from edge.usage import Usage


def object_payload(ctx: RequestContext) -> dict[str, Any]:
    """The call's JSON body, which must be an object."""
    if not isinstance(ctx.payload, dict):
        raise GatewayError(400, "Request body must be a JSON object.")
    return ctx.payload


def upstream_context(request: web.Request, ctx: RequestContext, route: Route) -> UpstreamContext:
    """What an adapter needs to call the route's provider for this admitted call."""
    settings = request.app[SETTINGS]
    return UpstreamContext(
        session=request.app[HTTP],
        route=route,
        timeouts=settings.timeouts,
        body_limit=settings.upstream_body_limit,
        admitted=ctx.reservation,
        credentials=request.app[CREDENTIALS],
    )


def json_answer(ctx: RequestContext, body: object, headers: Forwarded) -> web.Response:
    """A whole JSON answer with the provider's rate-limit headers."""
    response = web.Response(body=json_bytes(body), content_type="application/json")
    for name, value in headers:
        response.headers.add(name, value)
    ctx.mark_first_byte()
    return response


def no_tokens(_body: object) -> Usage:
    """A count's usage: it is a call (counted in request rates), but it uses no tokens."""
    return Usage()


def with_usage(spec: WireSpec, usage: Callable[[Any], Usage | None]) -> WireSpec:
    """An API's relay spec, its answer's usage read by `usage` instead."""
    return dataclasses.replace(spec, usage_from_body=usage)

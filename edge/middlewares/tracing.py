"""Trace context per request: the caller's `traceparent` carried to every provider call, and,
when spans are exported (`edge.tracing`), the request's server span with the GenAI attributes
known once it has been answered."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from edge.appkeys import TRACING
from edge.context import RequestContext, ctx_of
from edge.errors import GatewayError
from edge.route_table import RouteFacts, facts_of
from edge.tracing import (
    OPERATIONS,
    Tracing,
    carried,
    parent_context,
    provider_name,
    request_scope,
    server_span,
    set_error,
)


@web.middleware
async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Carry the caller's trace context; open the request's server span when exporting."""
    tracing = request.app.get(TRACING)
    incoming = carried(request.headers)
    facts = facts_of(request)
    # Probes and scrapes get no span: they would drown the traces that matter.
    if tracing is None or not tracing.exporting or facts.kind == "public":
        if not incoming:
            return await handler(request)
        ctx_of(request).trace_id = incoming["traceparent"][3:35]
        with request_scope(incoming):
            return await handler(request)
    return await _in_span(request, handler, tracing, incoming, facts)


async def _in_span(
    request: web.Request,
    handler: Handler,
    tracing: Tracing,
    incoming: dict[str, str],
    facts: RouteFacts,
) -> web.StreamResponse:
    ctx = ctx_of(request)
    resource = request.match_info.route.resource
    pattern = resource.canonical if resource is not None else "unmatched"
    with server_span(tracing, f"{request.method} {pattern}", parent_context(incoming)) as span:
        ctx.trace_id = format(span.get_span_context().trace_id, "032x")
        status = 500
        try:
            with request_scope({}, tracing.tracer):
                response = await handler(request)
            status = response.status
            return response
        except GatewayError as err:
            status = err.status
            set_error(span, err.code or str(err.status))
            raise
        finally:
            span.set_attribute("http.request.method", request.method)
            span.set_attribute("http.route", pattern)
            span.set_attribute("http.response.status_code", status)
            _describe(span, ctx, facts)
            if status >= 500:
                set_error(span, str(status))


def _describe(span: Any, ctx: RequestContext, facts: RouteFacts) -> None:
    """The tenant and GenAI attributes of a request's span: ids, names and counts only."""
    span.set_attribute("edge.request_id", ctx.request_id)
    principal = ctx.principal
    if principal is not None and principal.account is not None:
        span.set_attribute("edge.account", principal.account)
    if principal is not None and principal.kind == "key":
        span.set_attribute("edge.key_id", principal.subject)
    if facts.endpoint is not None and ctx.routes:
        operation = OPERATIONS.get(facts.endpoint, facts.endpoint)
        requested = ctx.routes[0].model.id
        span.update_name(f"{operation} {requested}")
        span.set_attribute("gen_ai.operation.name", operation)
        span.set_attribute("gen_ai.request.model", requested)
        served = next((r for r in ctx.routes if r.model.id == ctx.model), None)
        if served is not None:
            span.set_attribute("gen_ai.response.model", served.model.id)
            span.set_attribute("gen_ai.provider.name", provider_name(served))
    usage = ctx.usage
    if usage is not None:
        span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)

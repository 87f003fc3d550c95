"""Fallback models: on 429, 5xx, a connection failure or a timeout before the first byte has
been sent, the next model of the chain answers; never once the answer has begun.

The chain is the requested model, then `providerOptions.gateway.models` (in order), then the
catalog's `fallbacks` for the requested model.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from edge.context import RequestContext
from edge.errors import GatewayError
from edge.routing import Route, resolve_route, with_choices
from edge.tracing import begin_attempt
from policies.access import UNRESTRICTED, Access
from policies.catalog import Catalog, Endpoint

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
MODEL_HEADER = "x-edge-model"
Attempt = Callable[[Route], Awaitable[web.StreamResponse]]


def requested_fallbacks(payload: Any) -> list[str]:
    """`providerOptions.gateway.models`, validated."""
    options = payload.get("providerOptions") if isinstance(payload, dict) else None
    if options is None:
        return []
    gateway = options.get("gateway") if isinstance(options, dict) else None
    models = gateway.get("models") if isinstance(gateway, dict) else None
    if models is None:
        return []
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise GatewayError(
            400,
            "Invalid 'providerOptions.gateway.models': expected an array of model names.",
            param="providerOptions.gateway.models",
            code="invalid_type",
        )
    return list(models)


def model_not_allowed(name: str, model_id: str) -> GatewayError:
    """403 for a model outside the caller's access lists, naming it."""
    shown = name[:200] if name.lower() == model_id.lower() else f"{name[:200]}' ('{model_id}"
    return GatewayError(
        403,
        f"The model '{shown}' is not allowed for this credential. "
        "GET /v1/models lists the models you can call.",
        param="model",
        code="model_not_allowed",
    )


def fallback_chain(
    catalog: Catalog,
    name: object,
    payload: Any,
    endpoint: Endpoint,
    access: Access = UNRESTRICTED,
) -> list[Route]:
    """The routes to try, in order; errors in the requested names are the client's 400s, and a
    requested model outside the caller's access lists its 403 (a catalog-declared fallback
    outside them is skipped: the caller never named it)."""
    resolved = resolve_route(catalog, name, endpoint)
    primary = within(resolved, access)
    if primary is None:
        raise model_not_allowed(str(name), resolved.model.id)
    routes = [primary]
    seen = {primary.model.id}
    for requested in requested_fallbacks(payload):
        resolved = resolve_route(catalog, requested, endpoint)
        route = within(resolved, access)
        if route is None:
            raise model_not_allowed(requested, resolved.model.id)
        if route.model.id not in seen:
            seen.add(route.model.id)
            routes.append(route)
    for declared in primary.model.fallbacks:
        try:
            found = within(resolve_route(catalog, declared, endpoint), access)
        except GatewayError as err:
            # A declared fallback that cannot serve this endpoint here is skipped, not fatal.
            log.debug("fallback %s skipped: %s", declared, err.message)
            continue
        if found is not None and found.model.id not in seen:
            seen.add(found.model.id)
            routes.append(found)
    return routes[:MAX_ATTEMPTS]


def within(route: Route, access: Access) -> Route | None:
    """The route narrowed to the deployments the caller's access lists allow (each matched
    by the model's names and its own `<provider>/<upstream>`); None when none is."""
    if not route.choices or access.unrestricted:
        return route if access.allows_model(route.model) else None
    allowed = tuple(c for c in route.choices if access.allows_model(c.route.model))
    if len(allowed) == len(route.choices):
        return route
    return with_choices(allowed[0].route, allowed) if allowed else None


def retryable_status(status: int) -> bool:
    """Rate limits, upstream failures, unreachable upstreams and timeouts."""
    return status == 429 or status >= 500


def retryable(err: GatewayError) -> bool:
    """Whether another model may be tried after this error."""
    return retryable_status(err.status)


async def with_fallbacks(
    ctx: RequestContext, routes: list[Route], attempt: Attempt
) -> web.StreamResponse:
    """Run `attempt` on each route until one answers or fails in a way a retry cannot help."""
    tried = ctx.attempts  # logged and counted with each attempt's outcome
    for position, route in enumerate(routes):
        ctx.model, ctx.provider, ctx.deployment = route.model.id, route.provider.name, None
        ctx.response_headers[MODEL_HEADER] = route.model.id
        tried.append((route.model.id, 0))
        begin_attempt(route)
        last = position + 1 == len(routes)
        try:
            if route.balanced and ctx.balancer is not None:
                response = await ctx.balancer.serve(ctx, route, attempt)
            else:
                response = await attempt(route)
        except GatewayError as err:
            tried[-1] = (route.model.id, err.status)
            # Once a byte has gone out the answer is committed: no other model may continue it.
            if last or ctx.first_byte_at is not None or not retryable(err):
                raise
            status = err.status
        else:
            tried[-1] = (route.model.id, response.status)
            # A passthrough relays the provider's own 429 body as it is, without raising.
            if last or response.prepared or not retryable_status(response.status):
                return response
            status = response.status
        log.info(
            "model %s failed with %s; falling back to %s",
            route.model.id,
            status,
            routes[position + 1].model.id,
            extra={"request_id": ctx.request_id},
        )
    raise AssertionError("unreachable: the last attempt returns or raises")


def without_gateway_options(raw: bytes, payload: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The body without `providerOptions`, which providers would refuse as unknown."""
    if "providerOptions" not in payload:
        return raw, payload
    rest = {k: v for k, v in payload.items() if k != "providerOptions"}
    return orjson.dumps(rest), rest

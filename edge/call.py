"""A model call made canonical before admission: the model resolved once (with its fallback
chain), and a Responses call's stored transcript loaded, so the quota estimate is computed from
what the handler will send upstream and the handler sends exactly that."""

from __future__ import annotations

import orjson
from aiohttp import web

from edge.appkeys import SETTINGS, STORE
from edge.balancer import BALANCER
from edge.context import RequestContext
from edge.errors import GatewayError
from edge.fallback import fallback_chain
from edge.model_access import caller_access, require_endpoint
from edge.responses.chain import held_by, transcript
from edge.responses.records import reach_of, resolve_input
from edge.route_table import RouteFacts, requested_model


async def prepare_call(request: web.Request, ctx: RequestContext, facts: RouteFacts) -> None:
    """Resolve the call's chain and transcript onto `ctx` (`history_bytes`: what the input
    estimate adds to the body's, the transcript that will be prepended upstream)."""
    assert facts.endpoint is not None
    catalog = request.app[SETTINGS].catalog
    # The caller's access lists hold on every model the chain may call, before anything else
    # (a stored transcript, an item reference) is read for it.
    access = await caller_access(request, ctx)
    require_endpoint(access, facts.endpoint)
    name = requested_model(request, facts, ctx.payload)
    ctx.routes = fallback_chain(catalog, name, ctx.payload, facts.endpoint, access)
    ctx.balancer = request.app[BALANCER]
    if facts.endpoint != "responses":
        return
    # Item references resolved within the caller's lineage: what they add is sent upstream.
    referenced = await resolve_input(request, ctx)
    ctx.history_bytes = referenced
    previous = ctx.payload.get("previous_response_id")
    if previous is None:
        return
    if not isinstance(previous, str) or not previous:
        raise GatewayError(
            400,
            "Invalid 'previous_response_id': expected a response id string.",
            param="previous_response_id",
            code="invalid_type",
        )
    account = ctx.account
    if account is None:
        raise GatewayError(401, "Invalid authentication credentials", code="invalid_api_key")
    # A credential bound to a branch chains only from responses made in its lineage: every
    # turn outside it is missing to it, before anything else (state, size) is told or counted.
    reach = await reach_of(request)
    ctx.history = await transcript(request.app[STORE].responses, account, previous, reach)
    if ctx.routes[0].balanced:
        model = ctx.routes[0].model.id
        ctx.sticky = await held_by(request.app[STORE].responses, account, previous, model)
    ctx.history_bytes = referenced + (len(orjson.dumps(ctx.history)) if ctx.history else 0)

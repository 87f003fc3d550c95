"""POST /v1/responses: passthrough to Responses providers, translation for every other model,
with stored transcripts for `previous_response_id` and queued background runs."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson
from aiohttp import web

from edge.appkeys import SETTINGS, STORE
from edge.context import RequestContext, ctx_of
from edge.errors import GatewayError
from edge.fallback import with_fallbacks
from edge.handlers.translated import serve
from edge.relay import relay
from edge.responses.chain import HELD_BY, HELD_FOR
from edge.responses.records import (
    REFERENCED,
    account_rules,
    check_storage,
    refusal,
    resolve_input,
    room_of,
    save,
)
from edge.responses.state import encode_event
from edge.responses.tail import tail
from edge.route_table import admitted_routes
from edge.routing import Route
from edge.store.responses import StoredResponse, record_size
from edge.translate.common import new_id, now
from edge.translate.responses_client import ResponsesClient
from edge.translate.responses_object import Shell, complete_object
from edge.translate.responses_request import (
    GATEWAY_FIELDS,
    ResponseParams,
    input_of,
    parse_params,
    to_neutral_request,
)
from edge.translate.responses_wire import ResponsesObserver
from edge.translate.rewrite import set_model
from edge.upstream.auth import upstream_headers
from edge.upstream.endpoints import responses_url

# Fields the gateway acts on itself: a provider never sees them.
_OWN_FIELDS = (*GATEWAY_FIELDS, "previous_response_id", "background")


def _account(ctx: RequestContext) -> str:
    account = ctx.account
    if account is None:
        raise GatewayError(401, "Invalid authentication credentials", code="invalid_api_key")
    return account


def _recorded(ctx: RequestContext) -> dict[str, Any]:
    """The gateway-only fields of the request (`tags`, `trace`), as set aside on the context."""
    return {
        k: ctx.extra[f"responses.{k}"] for k in ("tags", "trace") if f"responses.{k}" in ctx.extra
    }


def _as_upstream_item(item: dict[str, Any]) -> dict[str, Any]:
    # Our ids on input messages mean nothing to a provider, which may refuse unknown ones.
    if item.get("type") == "message" and item.get("role") != "assistant":
        return {k: v for k, v in item.items() if k not in ("id", "status")}
    return item


def _referenced(ctx: RequestContext) -> dict[int, str]:
    """The input positions whose `item_reference` was resolved (`edge.responses.records`)."""
    found = ctx.extra.get(REFERENCED)
    return found if isinstance(found, dict) else {}


def upstream_payload(
    payload: dict[str, Any],
    route: Route,
    history: list[dict[str, Any]],
    stream: bool | None,
    referenced: Collection[int] = (),
) -> dict[str, Any]:
    """The body for a Responses provider: our fields out, the stored transcript in, and the
    items that references named (at `referenced`) sent as stored items are."""
    body = {k: v for k, v in payload.items() if k not in _OWN_FIELDS}
    body["model"] = route.model.upstream
    own = payload.get("input")
    if history or referenced:
        own_items = [{"role": "user", "content": own}] if isinstance(own, str) else own or []
        own_items = [
            _as_upstream_item(item) if i in referenced else item for i, item in enumerate(own_items)
        ]
        body["input"] = [_as_upstream_item(i) for i in history] + own_items
    if stream is not None:
        body["stream"] = stream
    return body


def _check_tools(params: ResponseParams, route: Route) -> None:
    if route.upstream_api == "responses":
        return
    for i, tool in enumerate(params.tools):
        if tool["type"] != "function":
            raise GatewayError(
                400,
                f"Tool type '{tool['type']}' is hosted by the provider and is not available for "
                f"model {route.model.id}; use function tools.",
                param=f"tools[{i}].type",
                code="unsupported_tool",
            )


async def create_response(request: web.Request) -> web.StreamResponse:
    """Create a response on any model in the catalog (with fallbacks when not in background)."""
    ctx = ctx_of(request)
    payload: dict[str, Any] = ctx.payload
    routes = admitted_routes(ctx.routes)
    params = parse_params(payload)
    # Item references are resolved before the input is read, for every model: edge stored the
    # items, and a provider may never have seen them (or their ids).
    await resolve_input(request, ctx)
    own_items = input_of(payload)
    if params.store and not params.background:
        # Refused before the provider is called when the input alone cannot be kept; a queued
        # run is checked when its record is written, before any worker runs it.
        await check_storage(request.app, _account(ctx), own_items)
    recorded = {k: payload[k] for k in ("tags", "trace") if payload.get(k) is not None}
    ctx.extra.update({f"responses.{k}": v for k, v in recorded.items()})
    # Loaded before admission (`edge.call`), within the caller's lineage, and estimated.
    history = ctx.history

    async def attempt(route: Route) -> web.StreamResponse:
        """Answer with one model of the fallback chain."""
        _check_tools(params, route)
        if params.background:
            # The run happens later, elsewhere: the first model is the one it is queued for.
            return await _enqueue(request, ctx, route, params, history, own_items)
        if route.passthrough:
            return await _passthrough(request, ctx, route, params, history, own_items)
        return await _translated(request, ctx, route, params, history, own_items)

    return await with_fallbacks(ctx, routes[:1] if params.background else routes, attempt)


async def _passthrough(
    request: web.Request,
    ctx: RequestContext,
    route: Route,
    params: ResponseParams,
    history: list[dict[str, Any]],
    own_items: list[dict[str, Any]],
) -> web.StreamResponse:
    payload: dict[str, Any] = ctx.payload
    assert ctx.body is not None
    referenced = _referenced(ctx)
    if history or referenced or any(k in payload for k in _OWN_FIELDS):
        body = orjson.dumps(upstream_payload(payload, route, history, None, referenced))
    else:
        body = set_model(ctx.body, payload, route.model.upstream)
    observer = ResponsesObserver()
    url = responses_url(route.provider)
    headers = upstream_headers(route.provider, request.headers)
    response = await relay(request, ctx, url, headers, body, observer.spec())
    final = observer.final_object()
    if final is not None:
        shell = Shell("", route.model.id, params, now(), False, params.previous_response_id)
        final = complete_object(shell, final)
        # The provider saw the transcript, not the id: the stored object names the chain.
        final["previous_response_id"] = params.previous_response_id
    recorded = _recorded(ctx)
    if ctx.deployment is not None and params.store:
        # The provider keeps this answer's state: the next turn goes back to it.
        recorded.update({HELD_BY: ctx.deployment, HELD_FOR: route.model.id})
    await save(
        request.app,
        _account(ctx),
        final,
        own_items,
        params.store,
        params.previous_response_id,
        recorded,
        ctx.branch,
        _referenced(ctx),
    )
    return response


async def _translated(
    request: web.Request,
    ctx: RequestContext,
    route: Route,
    params: ResponseParams,
    history: list[dict[str, Any]],
    own_items: list[dict[str, Any]],
) -> web.StreamResponse:
    shell = Shell(
        new_id("resp_"), route.model.id, params, now(), False, params.previous_response_id
    )
    req = to_neutral_request(params, history + own_items, route.model.upstream, params.stream)
    client = ResponsesClient(shell)
    response = await serve(request, ctx, route, req, client)
    await save(
        request.app,
        _account(ctx),
        client.final,
        own_items,
        params.store,
        params.previous_response_id,
        _recorded(ctx),
        ctx.branch,
        _referenced(ctx),
    )
    return response


async def _enqueue(
    request: web.Request,
    ctx: RequestContext,
    route: Route,
    params: ResponseParams,
    history: list[dict[str, Any]],
    own_items: list[dict[str, Any]],
) -> web.StreamResponse:
    """Queue a background run: answer `queued` at once (or stream its log from the start)."""
    account = _account(ctx)
    shell = Shell(new_id("resp_"), route.model.id, params, now(), True, params.previous_response_id)
    queued = shell.render("queued")
    reservation = ctx.reservation
    if reservation is not None:
        reservation.model = route.model.id
    passthrough = route.passthrough
    job = {
        "params": params.to_json(),
        "model": route.model.id,
        "items": None if passthrough else history + own_items,
        "upstream_body": upstream_payload(ctx.payload, route, history, True, _referenced(ctx))
        if passthrough
        else None,
        "reservation": reservation.to_json() if reservation is not None else None,
        # The deployment this call's balancing chose (the body was written for it): the run
        # goes there, wherever and whenever it is taken up.
        "deployment": ctx.deployment,
    }
    record = StoredResponse(
        id=shell.id,
        account=account,
        response=queued,
        input_items=own_items,
        status="queued",
        previous_response_id=params.previous_response_id,
        background=True,
        job=job,
        recorded=_recorded(ctx),
        branch=ctx.branch,
    )
    events = [
        {"type": "response.created", "response": queued},
        {"type": "response.queued", "response": queued},
    ]
    logged = [encode_event(e) for e in events]
    store = request.app[STORE]
    # Checked against the account's storage as it is written: refused, nothing is queued.
    room = room_of(await account_rules(request.app, account))
    unindexed = set(_referenced(ctx).values())
    ttl = request.app[SETTINGS].responses_retention
    written = await store.responses.create(record, ttl, logged, room, unindexed)
    if written < 0:
        await refusal(request.app, account, written, record_size(record, logged), room)
    await store.jobs.push(account, shell.id)
    # The worker settles the reservation when the run ends, wherever it runs.
    ctx.detach_reservation()
    if params.stream:
        return await tail(request, ctx, record, -1)
    return web.Response(body=orjson.dumps(queued), content_type="application/json")

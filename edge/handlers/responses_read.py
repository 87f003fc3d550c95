"""GET and DELETE /v1/responses/{id}, its input items, its event stream, and cancel: each for
the caller's account and, when its credential is bound to a branch, that branch's lineage."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from edge.appkeys import STORE
from edge.context import ctx_of
from edge.errors import GatewayError, bad_request
from edge.responses import state
from edge.responses.records import load, reach_of
from edge.responses.tail import tail
from edge.store.responses import StoredResponse


def _account(request: web.Request) -> str:
    account = ctx_of(request).account
    if account is None:
        raise GatewayError(401, "Invalid authentication credentials", code="invalid_api_key")
    return account


async def _load(request: web.Request, account: str) -> StoredResponse:
    """The response named in the path, if the caller reaches it; else 404 as for unknown ids."""
    reach = await reach_of(request)
    return await load(request.app, account, request.match_info["response_id"], reach)


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise bad_request(
            f"Invalid '{name}': expected an integer from {low} to {high}.", param=name
        )
    return value


async def get_response(request: web.Request) -> web.StreamResponse:
    """The stored object, or with `stream=true` its events after `starting_after`."""
    record = await _load(request, _account(request))
    if request.query.get("stream", "").lower() not in ("true", "1"):
        return _json(record.response)
    if not record.background:
        raise bad_request(
            "Only background responses can be streamed again; this one was not created with "
            "'background': true.",
            param="stream",
        )
    after = _int(request, "starting_after", -1, -1, 2**31)
    return await tail(request, ctx_of(request), record, after)


async def delete_response(request: web.Request) -> web.Response:
    """Delete a stored response (cancelling it first if it is still running)."""
    account = _account(request)
    record = await _load(request, account)
    if record.background and not record.terminal:
        await state.cancel(request.app, record)
    await request.app[STORE].responses.delete(account, record.id)
    return _json({"id": record.id, "object": "response.deleted", "deleted": True})


async def list_input_items(request: web.Request) -> web.Response:
    """The response's own input items, paginated with `limit`, `after` and `order`."""
    record = await _load(request, _account(request))
    limit = _int(request, "limit", 20, 1, 100)
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request("Invalid 'order': expected 'asc' or 'desc'.", param="order")
    items = record.input_items if order == "asc" else list(reversed(record.input_items))
    start = 0
    after = request.query.get("after")
    if after:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise bad_request(f"Invalid 'after': no input item '{after}'.", param="after")
        start = ids.index(after) + 1
    page = items[start : start + limit]
    return _json(
        {
            "object": "list",
            "data": page,
            "first_id": page[0].get("id") if page else None,
            "last_id": page[-1].get("id") if page else None,
            "has_more": start + limit < len(items),
        }
    )


async def cancel_response(request: web.Request) -> web.Response:
    """Cancel a background response; a finished one is returned unchanged."""
    account = _account(request)
    record = await _load(request, account)
    if not record.background:
        raise bad_request("Only background responses can be cancelled.", param="response_id")
    if record.terminal:
        return _json(record.response)
    await state.cancel(request.app, record)
    # Whoever ended it (this call, or the run finishing first), the stored object is final.
    return _json((await load(request.app, account, record.id)).response)

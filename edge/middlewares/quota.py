"""Quota: admit model calls before the handler, settle usage after it, whatever the outcome;
report our remaining allowance in RateLimit headers on every response to a model call."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from edge.appkeys import QUOTA
from edge.body import read_json
from edge.call import prepare_call
from edge.context import ctx_of
from edge.quota.precheck import precheck
from edge.quota.service import Admission
from edge.route_table import facts_of

log = logging.getLogger(__name__)
ADMISSION = "quota.admission"  # ctx.extra key


@web.middleware
async def quota_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the JSON body of inference calls, admit model calls, and settle once they end.

    Whether a request is a model call, and which model it calls, come from its route's facts
    and one resolution (`edge.call`) that the handler then answers with."""
    facts = facts_of(request)
    if facts.kind != "inference" or request.method != "POST":
        return await handler(request)
    ctx = ctx_of(request)
    if not facts.calls_model:
        if request.body_exists:
            ctx.body, ctx.payload = await read_json(request)
        return await handler(request)
    quota = request.app[QUOTA]
    # What needs no body is checked before reading it: a refused caller's body is never held.
    await precheck(quota, ctx, request.content_length)
    ctx.body, ctx.payload = await read_json(request)
    await prepare_call(request, ctx, facts)
    admission = await quota.admit(ctx, ctx.routes[0].model, generates=facts.generates)
    ctx.reservation = admission.reservation
    ctx.extra[ADMISSION] = admission
    try:
        return await handler(request)
    finally:
        # In the background: a whole answer leaves without waiting for the store, and a client
        # that disconnects (this task cancelled) still releases what its call held.
        quota.settle_soon(ctx)


async def quota_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: add RateLimit-Policy / RateLimit (the tightest of our limits) just
    before the headers leave, streams included; the provider's own headers are never replaced."""
    try:
        admission = ctx_of(request).extra.get(ADMISSION)
    except KeyError:
        return
    if not isinstance(admission, Admission):
        return
    # Known since admission: nothing to wait for before the headers leave.
    for name, value in admission.headers.items():
        response.headers.setdefault(name, value)

"""Quota: admit model calls before the handler, settle usage after it, whatever the outcome;
report our remaining allowance in RateLimit headers on every response to a model call."""

from __future__ import annotations

import logging
import re

from aiohttp import web
from aiohttp.typedefs import Handler

from edge.appkeys import QUOTA
from edge.body import read_json
from edge.context import ctx_of
from edge.middlewares.routes import route_kind
from edge.quota.service import Admission

log = logging.getLogger(__name__)
ADMISSION = "quota.admission"  # ctx.extra key
_MODEL_CALL = re.compile(
    r"(/chat/completions|/responses|/messages|/models/(?P<model>[^/]+?):(stream)?[gG]enerateContent)$"
)


def model_call(request: web.Request) -> re.Match[str] | None:
    """The match when a request is a call to a model (the requests quotas count)."""
    if request.method != "POST":
        return None
    return _MODEL_CALL.search(request.path)


@web.middleware
async def quota_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the JSON body of inference calls, admit model calls, and settle once they end."""
    if route_kind(request.path) != "inference" or request.method != "POST":
        return await handler(request)
    ctx = ctx_of(request)
    call = model_call(request)
    if call is None:
        if request.body_exists:
            ctx.body, ctx.payload = await read_json(request)
        return await handler(request)
    ctx.body, ctx.payload = await read_json(request)
    quota = request.app[QUOTA]
    admission = await quota.admit(ctx, call.group("model"))
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

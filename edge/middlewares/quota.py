"""Quota: admit before the handler, settle usage after it, whatever the outcome."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler
from redis.exceptions import RedisError

from edge.appkeys import QUOTA
from edge.body import read_json
from edge.context import ctx_of
from edge.middlewares.routes import route_kind
from edge.store import StoreUnavailable

log = logging.getLogger(__name__)


@web.middleware
async def quota_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the JSON body of inference calls, admit them, and settle once they end."""
    if route_kind(request.path) != "inference":
        return await handler(request)
    ctx = ctx_of(request)
    if request.method == "POST":
        ctx.body, ctx.payload = await read_json(request)
    quota = request.app[QUOTA]
    admission = await quota.admit(ctx)
    ctx.reservation = admission.reservation
    ctx.response_headers.update(admission.headers)
    try:
        return await handler(request)
    finally:
        if request.method == "POST":
            task = quota.settle_later(ctx)
            try:
                await asyncio.shield(task)
            except (RedisError, OSError, StoreUnavailable) as exc:
                log.warning("usage not recorded: %s", type(exc).__name__)

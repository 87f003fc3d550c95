"""Refuse bodies over the limit by Content-Length, before reading them; `edge.body.read_body`
enforces the same cap on what actually arrives (chunked or compressed bodies)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from edge.appkeys import SETTINGS
from edge.body import TOO_LARGE


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 413 at once when the declared length is over the limit."""
    length = request.content_length
    if length is not None and length > request.app[SETTINGS].body_limit:
        raise TOO_LARGE
    return await handler(request)

"""Load shedding: past `EDGE_MAX_INFLIGHT` requests at once, a new one is refused before any
work is done on it (no body read, no credential check), so the admitted ones keep their pace and
memory stays bounded."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from edge.appkeys import LIFECYCLE, SETTINGS
from edge.errors import GatewayError
from edge.route_table import facts_of


def overloaded() -> GatewayError:
    """A new error each time: one shared instance would keep the last traceback alive."""
    return GatewayError(
        503,
        "The gateway is at capacity. Retry the request shortly.",
        code="overloaded",
        headers={"Retry-After": "1"},
    )


@web.middleware
async def load_shedding_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Shed the request with 503 and Retry-After when the process is full."""
    limit = request.app[SETTINGS].guards.max_inflight
    # The outer middleware has already counted this request among those in flight; probes and
    # scrapes answer even when full.
    if (
        limit
        and len(request.app[LIFECYCLE].inflight) > limit
        and not facts_of(request).always_answered
    ):
        raise overloaded()
    return await handler(request)

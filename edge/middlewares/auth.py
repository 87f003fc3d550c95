"""Authentication and scope checks."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from edge.appkeys import AUTHENTICATOR
from edge.context import ctx_of
from edge.errors import GatewayError
from edge.route_table import facts_of
from policies.credentials import SCOPE_ADMIN, SCOPE_INVOKE


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Identify the caller; admin routes need ai_gateway:admin, all others ai_gateway:invoke."""
    kind = facts_of(request).kind
    if kind == "public":
        return await handler(request)
    principal = await request.app[AUTHENTICATOR].authenticate(request)
    ctx_of(request).principal = principal
    needed = SCOPE_ADMIN if kind == "admin" else SCOPE_INVOKE
    if not principal.has(needed):
        raise GatewayError(403, f"credential lacks {needed} scope", code="insufficient_scope")
    return await handler(request)

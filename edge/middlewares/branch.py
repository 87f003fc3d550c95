"""Branch binding: the request's branch must be the credential's branch or a descendant."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from edge.appkeys import IDENTITY, SETTINGS
from edge.context import ctx_of
from edge.errors import GatewayError
from edge.route_table import facts_of
from policies.branches import branch_from_host, in_lineage

# Unknown branches get the same answer as foreign ones: no existence leak.
NOT_IN_LINEAGE = GatewayError(403, "branch not in credential lineage", code="branch_not_allowed")


def requested_branch(request: web.Request) -> str | None:
    """The branch a request names: the X-Branch-Id header, else the Host."""
    header = request.headers.get("X-Branch-Id", "").strip()
    if header:
        return header
    host = request.headers.get("Host", "")
    return branch_from_host(host, request.app[SETTINGS].branch_host_pattern) if host else None


@web.middleware
async def branch_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind the request to a branch the credential may use."""
    if facts_of(request).kind != "inference":
        return await handler(request)
    ctx = ctx_of(request)
    principal = ctx.principal
    if principal is None or principal.account is None:
        raise NOT_IN_LINEAGE
    requested = requested_branch(request)
    if requested is None:
        ctx.branch = principal.branch
        return await handler(request)
    tree = await request.app[IDENTITY].branches(principal.account)
    if requested not in tree:
        raise NOT_IN_LINEAGE
    if principal.branch is not None:
        parents = {b.id: b.parent for b in tree.values()}
        if not in_lineage(parents, principal.branch, requested):
            raise NOT_IN_LINEAGE
    ctx.branch = requested
    return await handler(request)

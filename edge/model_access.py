"""The caller's access lists, read from its account and key records (the identity cache) and
the configured plans; checked once per model call, before admission, and by the model lists."""

from __future__ import annotations

from aiohttp import web

from edge.appkeys import IDENTITY, SETTINGS
from edge.context import RequestContext
from edge.errors import GatewayError
from policies.access import UNRESTRICTED, Access, scope_access


async def caller_access(request: web.Request, ctx: RequestContext) -> Access:
    """The intersection of the calling key's and account's lists (unrestricted for a caller
    without an account: such a caller is refused by admission anyway)."""
    principal = ctx.principal
    if principal is None or principal.account is None:
        return UNRESTRICTED
    identity = request.app[IDENTITY]
    account = await identity.account(principal.account)
    if account is None:
        return UNRESTRICTED
    plans = request.app[SETTINGS].quota.plans
    scopes = [scope_access(plans.merged(account.plan, account.quota))]
    if principal.kind == "key":
        key = await identity.key(principal.subject)
        if key is not None:
            scopes.append(scope_access(plans.key_values(key.plan, key.quota)))
    return Access(tuple(scopes))


def require_endpoint(access: Access, endpoint: str) -> None:
    """403 when the caller may not call this client API, naming the ones it may."""
    if access.allows_endpoint(endpoint):
        return
    allowed = ", ".join(access.endpoints()) or "none"
    raise GatewayError(
        403,
        f"This credential may not call the '{endpoint}' API; it may call: {allowed}.",
        code="endpoint_not_allowed",
    )

"""Who may administer what: the bootstrap token everything, an account's admin its account."""

from __future__ import annotations

from aiohttp import web

from edge.context import ctx_of
from edge.errors import GatewayError
from policies.credentials import Principal


def principal(request: web.Request) -> Principal:
    """The authenticated admin."""
    found = ctx_of(request).principal
    if found is None:
        raise GatewayError(401, "Invalid authentication credentials", code="invalid_api_key")
    return found


def not_found(what: str) -> GatewayError:
    """404 for a missing record, and for a record the caller may not see (no existence leak)."""
    return GatewayError(404, f"{what} not found", code="not_found")


def require_account_access(request: web.Request, account_id: str, what: str = "account") -> None:
    """An account-scoped admin sees only its own account: others are 404."""
    who = principal(request)
    if who.account is not None and who.account != account_id:
        raise not_found(what)


def require_global(request: web.Request) -> None:
    """Operations across accounts (creating accounts) need a global admin credential."""
    if principal(request).account is not None:
        raise GatewayError(
            403, "this operation needs a global admin credential", code="insufficient_scope"
        )

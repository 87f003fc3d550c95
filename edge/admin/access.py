"""Who may administer what: the bootstrap token everything, an account's admin its account, and
an admin bound to a branch that branch and its descendants only.

Refusals: an object the caller may not see (another account's, or in its own account outside
its branch's lineage) answers 404 exactly like an unknown id, so existence never leaks; a
request to create something wider than the caller answers 403 `branch_not_allowed`, and a
branch it cannot see is refused the same way as one outside its lineage.
"""

from __future__ import annotations

from aiohttp import web

from edge.appkeys import STORE
from edge.context import ctx_of
from edge.errors import GatewayError
from policies.branches import Lineage
from policies.credentials import Principal

BRANCH_NOT_ALLOWED = "branch_not_allowed"


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


def require_unbound(request: web.Request, what: str) -> None:
    """Operations on the whole account need a credential not bound to a branch."""
    bound = principal(request).branch
    if bound is not None:
        raise GatewayError(
            403,
            f"{what} covers the whole account; a credential bound to branch {bound} "
            "acts on that branch and its descendants only",
            code=BRANCH_NOT_ALLOWED,
        )


async def lineage(request: web.Request) -> Lineage:
    """What the calling admin reaches: all of its account, or its branch and descendants."""
    who = principal(request)
    if who.branch is None:
        return Lineage(None, {})
    if who.account is None:
        return Lineage(who.branch, {})  # a bound credential without an account reaches nothing
    tree = await request.app[STORE].identity.branches(who.account)
    return Lineage(who.branch, {b.id: b.parent for b in tree.values()})


def wider_than_caller(bound: str | None, rule: str, param: str) -> GatewayError:
    """403 for a request to create something outside the caller's lineage, naming the rule."""
    return GatewayError(
        403,
        f"branch not in credential lineage: a credential bound to branch {bound} {rule}",
        code=BRANCH_NOT_ALLOWED,
        param=param,
    )

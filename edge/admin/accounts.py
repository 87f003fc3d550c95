"""Accounts and their branch trees."""

from __future__ import annotations

from aiohttp import web

from edge.admin import audit
from edge.admin.access import (
    lineage,
    not_found,
    principal,
    require_account_access,
    require_global,
    wider_than_caller,
)
from edge.admin.paging import collect, page_body, page_params
from edge.admin.validate import Field, body, field_error
from edge.appkeys import QUOTA, STORE
from edge.errors import GatewayError
from edge.store.base import AlreadyExists
from edge.store.records import Account, Branch
from policies.branches import valid_branch_id

# Ids are at most 63 characters (policies.branches.BRANCH_ID_RE): the same limit in both checks.
ID = Field((str,), required=True, max_length=63)


async def load_account(request: web.Request, account_id: str) -> Account:
    """An account the caller may administer, else 404."""
    require_account_access(request, account_id)
    account = await request.app[STORE].identity.get_account(account_id)
    if account is None:
        raise not_found("account")
    return account


async def create_account(request: web.Request) -> web.Response:
    """POST /admin/v1/accounts."""
    require_global(request)
    data = await body(request, {"id": ID, "plan": Field((str,), max_length=64)})
    if not valid_branch_id(data["id"]):
        raise field_error("id", "use letters, digits, '_' and '-' (at most 63)")
    plan = data.get("plan") or "default"
    if plan not in request.app[QUOTA].plans:
        raise field_error("plan", f"unknown plan; one of {request.app[QUOTA].plans.names()}")
    account = Account(id=data["id"], plan=plan)
    try:
        await request.app[STORE].identity.create_account(account)
    except AlreadyExists as exc:
        raise GatewayError(
            409, f"account {account.id} already exists", code="already_exists"
        ) from exc
    await audit.record(
        request, "account.create", f"account:{account.id}", account.id, {"plan": plan}
    )
    return web.json_response(account.to_json(), status=201)


async def list_accounts(request: web.Request) -> web.Response:
    """GET /admin/v1/accounts?status=&plan=&limit=&after=: a page of accounts in id order (an
    account's own admin sees its own)."""
    status, plan = request.query.get("status"), request.query.get("plan")
    if status not in (None, "active", "blocked"):
        raise field_error("status", "one of active, blocked")
    after, limit = page_params(request)
    scope = principal(request).account
    identity = request.app[STORE].identity

    def keep(account: Account) -> bool:
        return (
            (scope is None or account.id == scope)
            and (status is None or account.blocked == (status == "blocked"))
            and (plan is None or account.plan == plan)
        )

    async def fetch(cursor: str | None, size: int) -> list[Account]:
        if scope is not None:  # one record to look at: its own
            own = await identity.get_account(scope)
            return [own] if own is not None and (cursor is None or own.id > cursor) else []
        return await identity.list_accounts(cursor, size)

    page = await collect(fetch, lambda a: a.id, keep, after, limit)
    return web.json_response(page_body([a.to_json() for a in page.items], page))


async def get_account(request: web.Request) -> web.Response:
    """GET /admin/v1/accounts/{account}."""
    account = await load_account(request, request.match_info["account"])
    return web.json_response(account.to_json())


async def _set_blocked(request: web.Request, blocked: bool) -> web.Response:
    account = await load_account(request, request.match_info["account"])
    require_global(request)  # an account's own admin must not lift an operator's block
    reason = None
    if request.can_read_body:
        data = await body(request, {"reason": Field((str,), nullable=True, max_length=500)})
        reason = data.get("reason")
    account.blocked = blocked
    account.blocked_reason = reason if blocked else None
    store = request.app[STORE]
    await store.identity.put_account(account)
    await store.invalidation.publish(f"account:{account.id}")
    action = "account.block" if blocked else "account.unblock"
    await audit.record(request, action, f"account:{account.id}", account.id, {"reason": reason})
    return web.json_response(account.to_json())


async def block_account(request: web.Request) -> web.Response:
    """POST /admin/v1/accounts/{account}/block."""
    return await _set_blocked(request, True)


async def unblock_account(request: web.Request) -> web.Response:
    """POST /admin/v1/accounts/{account}/unblock."""
    return await _set_blocked(request, False)


async def create_branch(request: web.Request) -> web.Response:
    """POST /admin/v1/accounts/{account}/branches: a caller bound to a branch creates below it."""
    account = await load_account(request, request.match_info["account"])
    data = await body(request, {"id": ID, "parent": Field((str,), nullable=True, max_length=64)})
    if not valid_branch_id(data["id"]):
        raise field_error("id", "use letters, digits, '_' and '-' (at most 63)")
    store = request.app[STORE]
    parent = data.get("parent")
    reach = await lineage(request)
    if not reach.covers(parent):
        # Never a root branch, never beside or above the caller's; unknown parents alike.
        rule = f"can only create branches below {reach.bound}"
        raise wider_than_caller(reach.bound, rule, "parent")
    if parent is not None and parent not in await store.identity.branches(account.id):
        raise field_error("parent", f"no branch {parent} in account {account.id}")
    branch = Branch(id=data["id"], account=account.id, parent=parent)
    try:
        await store.identity.create_branch(branch)
    except AlreadyExists as exc:
        raise GatewayError(
            409, f"branch {branch.id} already exists", code="already_exists"
        ) from exc
    await store.invalidation.publish(f"branches:{account.id}")
    details = {"parent": parent}
    await audit.record(request, "branch.create", f"branch:{branch.id}", account.id, details)
    return web.json_response(branch.to_json(), status=201)


async def list_branches(request: web.Request) -> web.Response:
    """GET /admin/v1/accounts/{account}/branches: a caller bound to a branch sees its lineage."""
    account = await load_account(request, request.match_info["account"])
    tree = await request.app[STORE].identity.branches(account.id)
    reach = await lineage(request)
    visible = (b for b in tree.values() if reach.covers(b.id))
    data = [b.to_json() for b in sorted(visible, key=lambda b: b.created_at)]
    return web.json_response({"object": "list", "data": data})


async def delete_branch(request: web.Request) -> web.Response:
    """DELETE /admin/v1/accounts/{account}/branches/{branch}: leaves only, in the caller's
    lineage (a branch outside it answers 404 like an unknown one)."""
    account = await load_account(request, request.match_info["account"])
    branch_id = request.match_info["branch"]
    store = request.app[STORE]
    tree = await store.identity.branches(account.id)
    if branch_id not in tree or not (await lineage(request)).covers(branch_id):
        raise not_found("branch")
    children = sorted(b.id for b in tree.values() if b.parent == branch_id)
    if children:
        raise GatewayError(
            409,
            f"branch {branch_id} has child branches ({', '.join(children[:5])}); delete them first",
            code="branch_not_leaf",
        )
    await store.identity.delete_branch(account.id, branch_id)
    await store.invalidation.publish(f"branches:{account.id}")
    await audit.record(request, "branch.delete", f"branch:{branch_id}", account.id)
    return web.json_response({"id": branch_id, "account": account.id, "deleted": True})

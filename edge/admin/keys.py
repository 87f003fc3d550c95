"""API keys: create (the secret shown once), list, get, revoke, rotate."""

from __future__ import annotations

import secrets
import time

from aiohttp import web

from edge.admin import audit
from edge.admin.access import (
    lineage,
    not_found,
    principal,
    require_account_access,
    wider_than_caller,
)
from edge.admin.accounts import load_account
from edge.admin.paging import collect, page_body, page_params
from edge.admin.validate import Field, body, field_error
from edge.appkeys import QUOTA, SETTINGS, STORE
from edge.errors import GatewayError
from edge.store.records import KeyRecord
from policies.credentials import KEY_PREFIX, KNOWN_SCOPES, SCOPE_INVOKE, hash_key, new_api_key

MAX_GRACE = 7 * 86400


async def load_key(request: web.Request) -> KeyRecord:
    """The key named in the path, if the caller may see it; else 404.

    A caller bound to a branch sees the keys bound to that branch or a descendant; an unbound
    key (wider than the caller) and a key bound elsewhere answer 404 like an unknown id."""
    key = await request.app[STORE].identity.get_key(request.match_info["key_id"])
    if key is None:
        raise not_found("key")
    require_account_access(request, key.account, "key")
    if not (await lineage(request)).covers(key.branch):
        raise not_found("key")
    return key


async def create_key(request: web.Request) -> web.Response:
    """POST /admin/v1/keys: the response holds the secret; it is never shown again."""
    data = await body(
        request,
        {
            "account": Field((str,), required=True, max_length=64),
            "branch": Field((str,), nullable=True, max_length=64),
            "scopes": Field((list,), max_length=8),
            "name": Field((str,), nullable=True, max_length=200),
            "plan": Field((str,), nullable=True, max_length=64),
        },
    )
    account = await load_account(request, data["account"])
    scopes = data.get("scopes", [SCOPE_INVOKE])
    if not scopes or any(not isinstance(s, str) or s not in KNOWN_SCOPES for s in scopes):
        raise field_error("scopes", f"a non-empty subset of {sorted(KNOWN_SCOPES)}")
    plan = data.get("plan")
    if plan is not None and plan not in request.app[QUOTA].plans:
        raise field_error("plan", f"unknown plan; one of {request.app[QUOTA].plans.names()}")
    store = request.app[STORE]
    branch = data.get("branch")
    reach = await lineage(request)
    if not reach.covers(branch):
        # Checked before the branch's existence: an unknown branch is refused the same way.
        rule = f"can only create keys bound to {reach.bound} or a branch below it"
        raise wider_than_caller(reach.bound, rule, "branch")
    if branch is not None and branch not in await store.identity.branches(account.id):
        raise field_error("branch", f"no branch {branch} in account {account.id}")
    key_id, secret = new_api_key()
    record = KeyRecord(
        id=key_id,
        account=account.id,
        hash=hash_key(request.app[SETTINGS].hmac_secret, secret),
        scopes=sorted(set(scopes)),
        branch=branch,
        name=data.get("name"),
        plan=data.get("plan"),
    )
    await store.identity.create_key(record)
    await store.invalidation.publish(f"key:{key_id}")  # drops a cached "unknown key" answer
    details = {"scopes": record.scopes, "branch": branch, "plan": record.plan}
    await audit.record(request, "key.create", f"key:{key_id}", account.id, details)
    return web.json_response({**record.public(), "key": secret}, status=201)


async def list_keys(request: web.Request) -> web.Response:
    """GET /admin/v1/keys?account=&branch=&name=&status=&limit=&after=: a page of keys in id
    order; a caller bound to a branch lists its lineage's keys."""
    query = request.query
    account = query.get("account") or principal(request).account
    if account is not None:
        if len(account) > 64:
            raise field_error("account", "longer than 64")
        require_account_access(request, account)
    status = query.get("status")
    if status not in (None, "active", "revoked"):
        raise field_error("status", "one of active, revoked")
    branch, name = query.get("branch"), query.get("name")
    reach = await lineage(request)
    identity = request.app[STORE].identity

    def keep(key: KeyRecord) -> bool:
        return (
            reach.covers(key.branch)
            and (branch is None or key.branch == branch)
            and (name is None or key.name == name)
            and (status is None or key.revoked == (status == "revoked"))
        )

    async def fetch(after: str | None, limit: int) -> list[KeyRecord]:
        return await identity.list_keys(account, after, limit)

    after, limit = page_params(request)
    page = await collect(fetch, lambda k: k.id, keep, after, limit)
    return web.json_response(page_body([k.public() for k in page.items], page))


async def get_key(request: web.Request) -> web.Response:
    """GET /admin/v1/keys/{key_id}."""
    return web.json_response((await load_key(request)).public())


async def revoke_key(request: web.Request) -> web.Response:
    """DELETE /admin/v1/keys/{key_id}: fails at once on every replica."""
    key = await load_key(request)
    if key.revoked_at is None:
        key.revoked_at = time.time()
        store = request.app[STORE]
        await store.identity.put_key(key)
        await store.invalidation.publish(f"key:{key.id}")
        await audit.record(request, "key.revoke", f"key:{key.id}", key.account)
    return web.json_response(key.public())


async def rotate_key(request: web.Request) -> web.Response:
    """POST /admin/v1/keys/{key_id}/rotate: a new secret (shown once); the previous one stays
    valid for `grace_seconds` (default: the configured rotation grace, one hour)."""
    key = await load_key(request)
    grace = request.app[SETTINGS].quota.rotation_grace
    if request.body_exists:
        data = await body(request, {"grace_seconds": Field((int,), minimum=0, maximum=MAX_GRACE)})
        grace = data.get("grace_seconds", grace)
    if key.revoked:
        raise GatewayError(409, "a revoked key cannot be rotated", code="key_revoked")
    secret = f"{KEY_PREFIX}{key.id}_{secrets.token_urlsafe(32)}"
    now = time.time()
    key.previous_hash = key.hash if grace > 0 else None
    key.previous_valid_until = now + grace if grace > 0 else None
    key.hash = hash_key(request.app[SETTINGS].hmac_secret, secret)
    store = request.app[STORE]
    await store.identity.put_key(key)
    await store.invalidation.publish(f"key:{key.id}")
    await audit.record(
        request, "key.rotate", f"key:{key.id}", key.account, {"grace_seconds": grace}
    )
    return web.json_response({**key.public(), "key": secret})

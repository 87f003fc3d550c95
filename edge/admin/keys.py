"""API keys: create (the secret shown once), list, get, revoke; per-key quota and usage."""

from __future__ import annotations

import time

from aiohttp import web

from edge.admin.access import not_found, principal, require_account_access
from edge.admin.accounts import load_account
from edge.admin.validate import Field, body, field_error
from edge.appkeys import SETTINGS, STORE
from edge.store.records import KeyRecord
from edge.store.usage import day_of
from policies.credentials import KNOWN_SCOPES, SCOPE_INVOKE, hash_key, new_api_key


async def load_key(request: web.Request) -> KeyRecord:
    """The key named in the path, if the caller may see it; else 404."""
    key = await request.app[STORE].identity.get_key(request.match_info["key_id"])
    if key is None:
        raise not_found("key")
    require_account_access(request, key.account, "key")
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
    store = request.app[STORE]
    branch = data.get("branch")
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
    return web.json_response({**record.public(), "key": secret}, status=201)


async def list_keys(request: web.Request) -> web.Response:
    """GET /admin/v1/keys?account=..."""
    account = request.query.get("account") or principal(request).account
    if account is not None:
        require_account_access(request, account)
    keys = await request.app[STORE].identity.list_keys(account)
    return web.json_response({"object": "list", "data": [k.public() for k in keys]})


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
    return web.json_response(key.public())


async def put_key_quota(request: web.Request) -> web.Response:
    """PUT /admin/v1/keys/{key_id}/quota."""
    key = await load_key(request)
    data = await body(request, {"requests_per_minute": Field((int,), nullable=True, minimum=1)})
    key.quota = {k: v for k, v in data.items() if v is not None}
    store = request.app[STORE]
    await store.identity.put_key(key)
    await store.invalidation.publish(f"key:{key.id}")
    return web.json_response({"key": key.id, "quota": key.quota})


async def key_usage(request: web.Request) -> web.Response:
    """GET /admin/v1/keys/{key_id}/usage: totals for today and the last 30 days."""
    key = await load_key(request)
    now = time.time()
    days = [day_of(now - 86400 * i) for i in range(30)]
    rows = await request.app[STORE].usage.days(f"key:{key.id}", days)
    totals: dict[str, int] = {}
    for row in rows.values():
        for name, value in row.items():
            totals[name] = totals.get(name, 0) + value
    return web.json_response(
        {
            "key": key.id,
            "today": rows[days[0]],
            "last_30_days": totals,
            "days": [{"day": d, **rows[d]} for d in days],
        }
    )

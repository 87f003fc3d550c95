"""Plans and quota overrides of keys and accounts: GET/PUT/DELETE, each change audited and
published so every replica applies it within a second."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from edge.admin import audit
from edge.admin.access import require_global
from edge.admin.accounts import load_account
from edge.admin.keys import load_key
from edge.admin.validate import Field, body, field_error
from edge.appkeys import QUOTA, STORE
from edge.body import read_json
from policies.quota import QuotaError, validate_quota
from policies.quota_plans import Plans

PLAN = Field((str,), required=True, nullable=True, max_length=64)


def _view(
    plans: Plans, scope: str, ident: str, plan: str | None, quota: dict[str, Any]
) -> dict[str, Any]:
    merged = plans.merged(plan, quota) if plan or scope == "account" else dict(quota)
    return {
        "scope": scope,
        "id": ident,
        "plan": plan,
        "overrides": quota,
        "effective": {k: v for k, v in merged.items() if v is not None},
    }


async def _overrides(request: web.Request) -> dict[str, Any]:
    _, payload = await read_json(request)
    try:
        return validate_quota(payload)
    except QuotaError as exc:
        raise field_error(exc.field, exc.message) from exc


def _check_plan(request: web.Request, plan: str | None) -> None:
    if plan is not None and plan not in request.app[QUOTA].plans:
        names = request.app[QUOTA].plans.names()
        raise field_error("plan", f"unknown plan; one of {names}")


async def get_key_quota(request: web.Request) -> web.Response:
    """GET /admin/v1/keys/{key_id}/quota."""
    key = await load_key(request)
    return web.json_response(_view(request.app[QUOTA].plans, "key", key.id, key.plan, key.quota))


async def _save_key(request: web.Request, action: str, quota: dict[str, Any]) -> web.Response:
    key = await load_key(request)
    key.quota = quota
    store = request.app[STORE]
    await store.identity.put_key(key)
    await store.invalidation.publish(f"key:{key.id}")
    await audit.record(request, action, f"key:{key.id}", key.account, {"quota": quota})
    return web.json_response(_view(request.app[QUOTA].plans, "key", key.id, key.plan, key.quota))


async def put_key_quota(request: web.Request) -> web.Response:
    """PUT /admin/v1/keys/{key_id}/quota: replace the key's overrides (idempotent)."""
    await load_key(request)  # 404 before 400: a foreign key's existence is not revealed
    return await _save_key(request, "key.quota.put", await _overrides(request))


async def delete_key_quota(request: web.Request) -> web.Response:
    """DELETE /admin/v1/keys/{key_id}/quota: back to the plan alone."""
    return await _save_key(request, "key.quota.delete", {})


async def put_key_plan(request: web.Request) -> web.Response:
    """PUT /admin/v1/keys/{key_id}/plan: a plan for the key itself (null: none)."""
    key = await load_key(request)
    plan = (await body(request, {"plan": PLAN}))["plan"]
    _check_plan(request, plan)
    key.plan = plan
    store = request.app[STORE]
    await store.identity.put_key(key)
    await store.invalidation.publish(f"key:{key.id}")
    await audit.record(request, "key.plan.put", f"key:{key.id}", key.account, {"plan": plan})
    return web.json_response(_view(request.app[QUOTA].plans, "key", key.id, key.plan, key.quota))


async def get_account_quota(request: web.Request) -> web.Response:
    """GET /admin/v1/accounts/{account}/quota."""
    account = await load_account(request, request.match_info["account"])
    plans = request.app[QUOTA].plans
    return web.json_response(_view(plans, "account", account.id, account.plan, account.quota))


async def _save_account(request: web.Request, action: str, quota: dict[str, Any]) -> web.Response:
    account = await load_account(request, request.match_info["account"])
    account.quota = quota
    store = request.app[STORE]
    await store.identity.put_account(account)
    await store.invalidation.publish(f"account:{account.id}")
    await audit.record(request, action, f"account:{account.id}", account.id, {"quota": quota})
    plans = request.app[QUOTA].plans
    return web.json_response(_view(plans, "account", account.id, account.plan, account.quota))


async def put_account_quota(request: web.Request) -> web.Response:
    """PUT /admin/v1/accounts/{account}/quota: replace the account's overrides (idempotent).

    Account limits bound every key of the account, so only a global admin sets them."""
    await load_account(request, request.match_info["account"])
    require_global(request)
    return await _save_account(request, "account.quota.put", await _overrides(request))


async def delete_account_quota(request: web.Request) -> web.Response:
    """DELETE /admin/v1/accounts/{account}/quota."""
    await load_account(request, request.match_info["account"])
    require_global(request)
    return await _save_account(request, "account.quota.delete", {})


async def put_account_plan(request: web.Request) -> web.Response:
    """PUT /admin/v1/accounts/{account}/plan."""
    account = await load_account(request, request.match_info["account"])
    require_global(request)
    plan = (await body(request, {"plan": Field((str,), required=True, max_length=64)}))["plan"]
    _check_plan(request, plan)
    account.plan = plan
    store = request.app[STORE]
    await store.identity.put_account(account)
    await store.invalidation.publish(f"account:{account.id}")
    await audit.record(
        request, "account.plan.put", f"account:{account.id}", account.id, {"plan": plan}
    )
    plans = request.app[QUOTA].plans
    return web.json_response(_view(plans, "account", account.id, account.plan, account.quota))


async def list_plans(request: web.Request) -> web.Response:
    """GET /admin/v1/plans: every plan and its limits."""
    plans = request.app[QUOTA].plans
    data = [
        {"name": p.name, "description": p.description, "limits": dict(p.values)}
        for p in (plans.get(n) for n in plans.names())
    ]
    return web.json_response({"object": "list", "data": data})

"""Usage read-back: requests, tokens and cost per day for 30 days, each limit's use in its
current window with what remains, and the bytes the account's stored responses hold."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from edge.admin.accounts import load_account
from edge.admin.keys import load_key
from edge.appkeys import QUOTA, STORE
from edge.quota.allowance import allowance
from edge.store.records import Account
from edge.store.usage import day_of

DAYS = 30


async def _days(request: web.Request, scope: str) -> dict[str, Any]:
    now = time.time()
    days = [day_of(now - 86400 * i) for i in range(DAYS)]
    rows = await request.app[STORE].usage.days(scope, days)
    totals: dict[str, int] = {}
    for row in rows.values():
        for name, value in row.items():
            totals[name] = totals.get(name, 0) + value
    return {
        "today": rows[days[0]],
        "last_30_days": totals,
        "days": [{"day": d, **rows[d]} for d in days],
    }


async def _storage(request: web.Request, account: Account) -> dict[str, Any]:
    """The account's stored responses: their bytes (expired ones forgotten first), how many
    there are, and its `storage_bytes` (null: no limit) and `max_stored_response_bytes`."""
    rules = request.app[QUOTA].plans.rules(account.plan, account.quota)
    held = await request.app[STORE].responses.storage(account.id)
    limit = rules.storage_bytes
    return {
        "used_bytes": held.used,
        "responses": held.responses,
        "storage_bytes": limit,
        "remaining_bytes": None if limit is None else max(0, limit - held.used),
        "max_stored_response_bytes": rules.max_stored_response_bytes,
    }


async def key_usage(request: web.Request) -> web.Response:
    """GET /admin/v1/keys/{key_id}/usage: the key's own limits and its account's."""
    key = await load_key(request)
    account = await load_account(request, key.account)
    quota = request.app[QUOTA]
    limits, in_flight = await allowance(quota, account.id, quota.scopes(account, key))
    return web.json_response(
        {
            "scope": "key",
            "id": key.id,
            "account": account.id,
            "in_flight": in_flight,
            "limits": limits,
            "storage": await _storage(request, account),
            **await _days(request, f"key:{key.id}"),
        }
    )


async def account_usage(request: web.Request) -> web.Response:
    """GET /admin/v1/accounts/{account}/usage."""
    account = await load_account(request, request.match_info["account"])
    quota = request.app[QUOTA]
    scopes = quota.scopes(account, None)
    limits, in_flight = await allowance(quota, account.id, scopes)
    return web.json_response(
        {
            "scope": "account",
            "id": account.id,
            "account": account.id,
            "in_flight": in_flight,
            "limits": limits,
            "storage": await _storage(request, account),
            **await _days(request, f"account:{account.id}"),
        }
    )

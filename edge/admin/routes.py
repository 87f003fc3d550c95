"""Admin routes."""

from __future__ import annotations

from aiohttp import web

from edge.admin import accounts, audit, keys, openapi, quotas, usage

PREFIX = "/admin/v1"


def setup_admin(app: web.Application) -> None:
    """Register the admin API and its OpenAPI document."""
    r = app.router
    r.add_get(f"{PREFIX}/openapi.json", openapi.serve_openapi)
    r.add_post(f"{PREFIX}/accounts", accounts.create_account)
    r.add_get(f"{PREFIX}/accounts", accounts.list_accounts)
    r.add_get(f"{PREFIX}/accounts/{{account}}", accounts.get_account)
    r.add_put(f"{PREFIX}/accounts/{{account}}/plan", quotas.put_account_plan)
    r.add_post(f"{PREFIX}/accounts/{{account}}/block", accounts.block_account)
    r.add_post(f"{PREFIX}/accounts/{{account}}/unblock", accounts.unblock_account)
    r.add_post(f"{PREFIX}/accounts/{{account}}/branches", accounts.create_branch)
    r.add_get(f"{PREFIX}/accounts/{{account}}/branches", accounts.list_branches)
    r.add_delete(f"{PREFIX}/accounts/{{account}}/branches/{{branch}}", accounts.delete_branch)
    r.add_get(f"{PREFIX}/accounts/{{account}}/quota", quotas.get_account_quota)
    r.add_put(f"{PREFIX}/accounts/{{account}}/quota", quotas.put_account_quota)
    r.add_delete(f"{PREFIX}/accounts/{{account}}/quota", quotas.delete_account_quota)
    r.add_get(f"{PREFIX}/accounts/{{account}}/usage", usage.account_usage)
    r.add_post(f"{PREFIX}/keys", keys.create_key)
    r.add_get(f"{PREFIX}/keys", keys.list_keys)
    r.add_get(f"{PREFIX}/keys/{{key_id}}", keys.get_key)
    r.add_delete(f"{PREFIX}/keys/{{key_id}}", keys.revoke_key)
    r.add_post(f"{PREFIX}/keys/{{key_id}}/rotate", keys.rotate_key)
    r.add_put(f"{PREFIX}/keys/{{key_id}}/plan", quotas.put_key_plan)
    r.add_get(f"{PREFIX}/keys/{{key_id}}/quota", quotas.get_key_quota)
    r.add_put(f"{PREFIX}/keys/{{key_id}}/quota", quotas.put_key_quota)
    r.add_delete(f"{PREFIX}/keys/{{key_id}}/quota", quotas.delete_key_quota)
    r.add_get(f"{PREFIX}/keys/{{key_id}}/usage", usage.key_usage)
    r.add_get(f"{PREFIX}/plans", quotas.list_plans)
    r.add_get(f"{PREFIX}/audit", audit.list_audit)

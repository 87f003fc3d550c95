"""Admin routes."""

from __future__ import annotations

from aiohttp import web

from edge.admin import accounts, keys

PREFIX = "/admin/v1"


def setup_admin(app: web.Application) -> None:
    """Register the admin API."""
    r = app.router
    r.add_post(f"{PREFIX}/accounts", accounts.create_account)
    r.add_get(f"{PREFIX}/accounts", accounts.list_accounts)
    r.add_get(f"{PREFIX}/accounts/{{account}}", accounts.get_account)
    r.add_post(f"{PREFIX}/accounts/{{account}}/block", accounts.block_account)
    r.add_post(f"{PREFIX}/accounts/{{account}}/unblock", accounts.unblock_account)
    r.add_post(f"{PREFIX}/accounts/{{account}}/branches", accounts.create_branch)
    r.add_get(f"{PREFIX}/accounts/{{account}}/branches", accounts.list_branches)
    r.add_post(f"{PREFIX}/keys", keys.create_key)
    r.add_get(f"{PREFIX}/keys", keys.list_keys)
    r.add_get(f"{PREFIX}/keys/{{key_id}}", keys.get_key)
    r.add_delete(f"{PREFIX}/keys/{{key_id}}", keys.revoke_key)
    r.add_put(f"{PREFIX}/keys/{{key_id}}/quota", keys.put_key_quota)
    r.add_get(f"{PREFIX}/keys/{{key_id}}/usage", keys.key_usage)

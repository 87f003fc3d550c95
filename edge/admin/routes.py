"""Admin routes."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from edge.admin import accounts, audit, keys, openapi, quotas, usage, usage_export
from edge.route_table import ADMIN, PUBLIC, declare

PREFIX = "/admin/v1"


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("POST", "/accounts", accounts.create_account),
    ("GET", "/accounts", accounts.list_accounts),
    ("GET", "/accounts/{account}", accounts.get_account),
    ("PUT", "/accounts/{account}/plan", quotas.put_account_plan),
    ("POST", "/accounts/{account}/block", accounts.block_account),
    ("POST", "/accounts/{account}/unblock", accounts.unblock_account),
    ("POST", "/accounts/{account}/branches", accounts.create_branch),
    ("GET", "/accounts/{account}/branches", accounts.list_branches),
    ("DELETE", "/accounts/{account}/branches/{branch}", accounts.delete_branch),
    ("GET", "/accounts/{account}/quota", quotas.get_account_quota),
    ("PUT", "/accounts/{account}/quota", quotas.put_account_quota),
    ("DELETE", "/accounts/{account}/quota", quotas.delete_account_quota),
    ("GET", "/accounts/{account}/usage", usage.account_usage),
    ("POST", "/keys", keys.create_key),
    ("GET", "/keys", keys.list_keys),
    ("GET", "/keys/{key_id}", keys.get_key),
    ("DELETE", "/keys/{key_id}", keys.revoke_key),
    ("POST", "/keys/{key_id}/rotate", keys.rotate_key),
    ("PUT", "/keys/{key_id}/plan", quotas.put_key_plan),
    ("GET", "/keys/{key_id}/quota", quotas.get_key_quota),
    ("PUT", "/keys/{key_id}/quota", quotas.put_key_quota),
    ("DELETE", "/keys/{key_id}/quota", quotas.delete_key_quota),
    ("GET", "/keys/{key_id}/usage", usage.key_usage),
    ("GET", "/usage/export", usage_export.export_usage),
    ("GET", "/plans", quotas.list_plans),
    ("GET", "/audit", audit.list_audit),
)


def setup_admin(app: web.Application) -> None:
    """Register the admin API and its OpenAPI document."""
    declare(app, "GET", f"{PREFIX}/openapi.json", openapi.serve_openapi, PUBLIC)
    for method, path, handler in ROUTES:
        declare(app, method, f"{PREFIX}{path}", handler, ADMIN)

"""Recording admin changes, and reading the log back at GET /admin/v1/audit."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from edge.admin.access import principal, require_account_access, require_unbound
from edge.admin.validate import field_error
from edge.appkeys import STORE
from edge.store.audit import AuditEntry

MAX_PAGE = 500
_ENTRY_ID = re.compile(r"^[0-9]{1,20}(-[0-9]{1,20})?\Z")


def actor_of(request: web.Request) -> tuple[str, str | None]:
    """(who, their account) for the audit log."""
    who = principal(request)
    name = "bootstrap" if who.kind == "bootstrap" else f"{who.kind}:{who.subject}"
    return name, who.account


async def record(
    request: web.Request,
    action: str,
    target: str,
    account: str | None,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one change (never a secret) to the audit log."""
    actor, actor_account = actor_of(request)
    entry = AuditEntry(
        actor=actor,
        actor_account=actor_account,
        action=action,
        target=target,
        account=account,
        details=details or {},
    )
    await request.app[STORE].audit.append(entry)


def _limit(raw: str | None) -> int:
    if raw is None:
        return 100
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise field_error("limit", f"an integer from 1 to {MAX_PAGE}")
    return int(raw)


async def list_audit(request: web.Request) -> web.Response:
    """GET /admin/v1/audit?account=&limit=&before=: newest first."""
    account = request.query.get("account") or principal(request).account
    if account is not None:
        if len(account) > 64:
            raise field_error("account", "longer than 64")
        require_account_access(request, account)
    # The log names every branch and key of the account: not for a branch-bound credential.
    require_unbound(request, "the audit log")
    limit = _limit(request.query.get("limit"))
    before = request.query.get("before") or None
    if before is not None and not _ENTRY_ID.match(before):
        raise field_error("before", "an entry id from a previous page")
    entries = await request.app[STORE].audit.list(account, limit, before)
    data = [e.to_json() for e in entries]
    return web.json_response(
        {"object": "list", "data": data, "next_before": data[-1]["id"] if data else None}
    )

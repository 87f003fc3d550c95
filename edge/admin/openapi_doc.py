"""The admin API described as OpenAPI 3.1: paths here, shared schemas in openapi_schemas."""

from __future__ import annotations

from typing import Any

from edge.admin.openapi_schemas import ref, schemas_for

JSON = "application/json"
_ERRORS = {
    "400": "Invalid request: the message and `param` name the field.",
    "401": "Missing or invalid admin credential.",
    "403": "The credential lacks ai_gateway:admin, the operation needs a global admin, or a "
    "credential bound to a branch asks for something outside that branch's lineage "
    "(`branch_not_allowed`).",
    "404": "No such record, or a record of another account or outside a branch-bound "
    "credential's lineage.",
    "409": "Conflicts with the current state.",
    "503": "The store is unreachable; retry shortly.",
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": ref("Error")}}}


def _op(
    summary: str,
    ok: str,
    schema: str,
    *,
    status: str = "200",
    body: str | None = None,
    body_required: bool = True,
    params: list[dict[str, Any]] | None = None,
    errors: tuple[str, ...] = ("400", "401", "403", "404", "503"),
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        status: {"description": ok, "content": {JSON: {"schema": ref(schema)}}}
    }
    for code in errors:
        responses[code] = _error(_ERRORS[code])
    responses["default"] = _error("Any other error, in the same shape.")
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {
            "required": body_required,
            "content": {JSON: {"schema": ref(body)}},
        }
    return op


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "maxLength": 64},
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


PAGING = [
    _query(
        "limit",
        "Records per page (1-1000, default 100).",
        {"type": "integer", "minimum": 1, "maximum": 1000},
    ),
    _query(
        "after",
        "The `next_cursor` of the previous page.",
        {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    ),
]
ACCOUNT = _path_param("account", "Account id.")
KEY = _path_param("key_id", "Key id (the 16 hex characters after `ek_`).")
BRANCH = _path_param("branch", "Branch id.")


GROUP = "(account|key|model|day)"


def _export() -> dict[str, Any]:
    day = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
    op = _op(
        "Usage per account, key, model and day over a date range, streamed.",
        "One row per group: requests, tokens, cost_micros and cost_usd (priced at call time).",
        "UsageExportRow",
        params=[
            _query("from", "First UTC day (default: 29 days before `to`).", day),
            _query("to", "Last UTC day (default: today).", day),
            _query(
                "group_by",
                "Comma-separated: account, key, model, day (default account,day; key implies "
                "account).",
                {"type": "string", "pattern": f"^{GROUP}(,{GROUP})*$"},
            ),
            _query("format", "jsonl (default) or csv.", {"enum": ["jsonl", "csv"]}),
            _query("account", "Only this account.", {"type": "string", "maxLength": 64}),
        ],
    )
    row = op["responses"]["200"]["content"][JSON]
    op["responses"]["200"]["content"] = {
        "application/x-ndjson": row,
        "text/csv": {"schema": {"type": "string"}},
    }
    return op


def _paths() -> dict[str, Any]:
    conflict = ("400", "401", "403", "404", "409", "503")
    return {
        "/accounts": {
            "post": _op(
                "Create an account (global admins).",
                "Created.",
                "Account",
                status="201",
                body="AccountCreate",
                errors=conflict,
            ),
            "get": _op(
                "List accounts in id order, a page at a time (an account admin sees its own).",
                "Accounts.",
                "AccountList",
                params=[
                    _query("status", "Only these.", {"enum": ["active", "blocked"]}),
                    _query("plan", "Only accounts on this plan.", {"type": "string"}),
                    *PAGING,
                ],
                errors=("400", "401", "403", "503"),
            ),
        },
        "/accounts/{account}": {
            "parameters": [ACCOUNT],
            "get": _op("Get an account.", "The account.", "Account"),
        },
        "/accounts/{account}/plan": {
            "parameters": [ACCOUNT],
            "put": _op(
                "Set the account's plan (global admins).",
                "The account's quota.",
                "QuotaView",
                body="PlanSet",
            ),
        },
        "/accounts/{account}/block": {
            "parameters": [ACCOUNT],
            "post": _op(
                "Block every call of the account (global admins).",
                "The account.",
                "Account",
                body="BlockReason",
                body_required=False,
            ),
        },
        "/accounts/{account}/unblock": {
            "parameters": [ACCOUNT],
            "post": _op(
                "Lift a block (global admins).",
                "The account.",
                "Account",
                body="BlockReason",
                body_required=False,
            ),
        },
        "/accounts/{account}/branches": {
            "parameters": [ACCOUNT],
            "post": _op(
                "Create a branch.",
                "Created.",
                "Branch",
                status="201",
                body="BranchCreate",
                errors=conflict,
            ),
            "get": _op("List the account's branches.", "Branches.", "BranchList"),
        },
        "/accounts/{account}/branches/{branch}": {
            "parameters": [ACCOUNT, BRANCH],
            "delete": _op("Delete a leaf branch.", "Deleted.", "BranchDeleted", errors=conflict),
        },
        "/accounts/{account}/quota": {
            "parameters": [ACCOUNT],
            "get": _op(
                "The account's plan, overrides and effective limits.", "Quota.", "QuotaView"
            ),
            "put": _op(
                "Replace the account's overrides (global admins; idempotent).",
                "Quota.",
                "QuotaView",
                body="QuotaValues",
            ),
            "delete": _op("Remove the account's overrides.", "Quota.", "QuotaView"),
        },
        "/accounts/{account}/usage": {
            "parameters": [ACCOUNT],
            "get": _op(
                "Usage per day for 30 days and each limit's current window.", "Usage.", "Usage"
            ),
        },
        "/keys": {
            "post": _op(
                "Create a key: the secret is in this response only.",
                "Created.",
                "KeyWithSecret",
                status="201",
                body="KeyCreate",
            ),
            "get": _op(
                "List keys in id order, a page at a time.",
                "Keys.",
                "KeyList",
                params=[
                    _query(
                        "account", "Only this account's keys.", {"type": "string", "maxLength": 64}
                    ),
                    _query("branch", "Only keys bound to this branch.", {"type": "string"}),
                    _query("name", "Only keys of this name.", {"type": "string"}),
                    _query("status", "Only these.", {"enum": ["active", "revoked"]}),
                    *PAGING,
                ],
            ),
        },
        "/keys/{key_id}": {
            "parameters": [KEY],
            "get": _op("Get a key (never its secret).", "The key.", "Key"),
            "delete": _op(
                "Revoke a key: refused by every replica within a second.", "The revoked key.", "Key"
            ),
        },
        "/keys/{key_id}/rotate": {
            "parameters": [KEY],
            "post": _op(
                "New secret (shown once); the previous one stays valid for "
                "`grace_seconds` (default 3600).",
                "The key with its new secret.",
                "KeyWithSecret",
                body="Rotate",
                body_required=False,
                errors=conflict,
            ),
        },
        "/keys/{key_id}/plan": {
            "parameters": [KEY],
            "put": _op(
                "Set (or clear, with null) the key's own plan.",
                "Quota.",
                "QuotaView",
                body="KeyPlanSet",
            ),
        },
        "/keys/{key_id}/quota": {
            "parameters": [KEY],
            "get": _op("The key's plan, overrides and effective limits.", "Quota.", "QuotaView"),
            "put": _op(
                "Replace the key's overrides (idempotent).",
                "Quota.",
                "QuotaView",
                body="QuotaValues",
            ),
            "delete": _op("Remove the key's overrides.", "Quota.", "QuotaView"),
        },
        "/keys/{key_id}/usage": {
            "parameters": [KEY],
            "get": _op(
                "Usage per day for 30 days and each limit's current window (the "
                "key's and its account's).",
                "Usage.",
                "Usage",
            ),
        },
        "/plans": {
            "get": _op("The configured plans.", "Plans.", "PlanList", errors=("401", "403", "503")),
        },
        "/usage/export": {"get": _export()},
        "/audit": {
            "get": _op(
                "Admin changes, newest first.",
                "Entries.",
                "AuditList",
                params=[
                    _query(
                        "account",
                        "Only this account's entries.",
                        {"type": "string", "maxLength": 64},
                    ),
                    _query(
                        "limit",
                        "Entries per page (1-500, default 100).",
                        {"type": "integer", "minimum": 1, "maximum": 500},
                    ),
                    _query(
                        "before",
                        "The `next_before` of the previous page.",
                        {"type": "string", "pattern": "^[0-9]{1,20}(-[0-9]{1,20})?$"},
                    ),
                ],
            ),
        },
    }


def document(plans: list[str]) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document, naming the configured plans."""
    schemas = schemas_for(plans)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "edge admin API",
            "version": "1.0.0",
            "description": "Accounts, branches, keys, quotas, usage and the audit log. "
            "Authenticate with `Authorization: Bearer <admin token or admin key>`.",
        },
        "servers": [{"url": "/admin/v1"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
    }

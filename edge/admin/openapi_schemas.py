"""JSON Schemas of the admin API's bodies (OpenAPI 3.1, so JSON Schema 2020-12)."""

from __future__ import annotations

from typing import Any

from policies.access import MAX_PATTERN_LENGTH, MAX_PATTERNS
from policies.catalog import ENDPOINTS
from policies.quota import (
    COST_FIELDS,
    INT_FIELDS,
    MAX_LIMIT,
    MAX_RESPONSE_CAP,
    MAX_THRESHOLDS,
    MIN_RESPONSE_CAP,
    STRATEGIES,
)

ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"


def ref(name: str) -> dict[str, str]:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(
    props: dict[str, Any], required: tuple[str, ...] = (), closed: bool = True
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _list(item: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    props = {"object": {"const": "list"}, "data": {"type": "array", "items": ref(item)}}
    props.update(extra or {})
    return _obj(props, ("object", "data"), closed=False)


STR = {"type": "string"}
NUM = {"type": "number"}
INT = {"type": "integer"}
NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_NUM = {"type": ["number", "null"]}
# A cursor page: `next_cursor` goes back as `after` for the next page (null on the last).
PAGED = {"has_more": {"type": "boolean"}, "next_cursor": {"type": ["string", "null"]}}
QUOTA_OBJECT = {"type": "object"}  # stored overrides, as set through QuotaValues


def _quota_values() -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name in INT_FIELDS:
        props[name] = _nullable({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})
    for name in COST_FIELDS:
        props[name] = _nullable({"type": "number", "exclusiveMinimum": 0, "maximum": MAX_LIMIT})
    for name in ("default_max_output_tokens",):
        props[name] = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
    props["max_stored_response_bytes"] = {
        "type": "integer",
        "minimum": MIN_RESPONSE_CAP,
        "maximum": MAX_RESPONSE_CAP,
    }
    props["bytes_per_token"] = {"type": "number", "exclusiveMinimum": 0, "maximum": 64}
    props["strategy"] = {"enum": list(STRATEGIES)}
    props["budget_timezone"] = {"type": "string", "minLength": 1, "maxLength": 64}
    props["alert_thresholds"] = _nullable(
        {
            "type": "array",
            "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 10},
            "maxItems": MAX_THRESHOLDS,
        }
    )
    glob = {"type": "string", "minLength": 1, "maxLength": MAX_PATTERN_LENGTH}
    for name in ("models", "deny_models"):
        props[name] = _nullable({"type": "array", "items": glob, "maxItems": MAX_PATTERNS})
    props["endpoints"] = _nullable(
        {"type": "array", "items": {"enum": list(ENDPOINTS)}, "maxItems": MAX_PATTERNS}
    )
    schema = _obj(props)
    schema["description"] = (
        "Overrides on top of the plan; null lifts a plan's limit or list. A PUT replaces them "
        "all. `models` / `deny_models`: globs on catalog ids, aliases and "
        "`<provider>/<upstream>`; `endpoints`: the client APIs the scope may call."
    )
    return schema


COUNTERS = _obj(
    {
        name: INT
        for name in ("requests", "input_tokens", "output_tokens", "cached_tokens", "cost_micros")
    },
    closed=False,
)

SCHEMAS: dict[str, Any] = {
    "Error": _obj(
        {
            "error": _obj(
                {"message": STR, "type": STR, "param": NULLABLE_STR, "code": NULLABLE_STR},
                ("message", "type"),
                closed=False,
            )
        },
        ("error",),
        closed=False,
    ),
    "Account": _obj(
        {
            "id": STR,
            "plan": STR,
            "blocked": {"type": "boolean"},
            "blocked_reason": NULLABLE_STR,
            "quota": QUOTA_OBJECT,
            "created_at": NUM,
        },
        ("id", "plan", "blocked", "quota", "created_at"),
        closed=False,
    ),
    "AccountCreate": _obj(
        {
            "id": {"type": "string", "pattern": ID_PATTERN},
            "plan": {"type": "string", "maxLength": 64},
        },
        ("id",),
    ),
    "AccountList": _list("Account", PAGED),
    "PlanSet": _obj({"plan": {"type": "string", "maxLength": 64}}, ("plan",)),
    "KeyPlanSet": _obj({"plan": _nullable({"type": "string", "maxLength": 64})}, ("plan",)),
    "BlockReason": _obj({"reason": _nullable({"type": "string", "maxLength": 500})}),
    "Branch": _obj(
        {"id": STR, "account": STR, "parent": NULLABLE_STR, "created_at": NUM},
        ("id", "account", "parent"),
        closed=False,
    ),
    "BranchCreate": _obj(
        {
            "id": {"type": "string", "pattern": ID_PATTERN},
            "parent": _nullable({"type": "string", "maxLength": 64}),
        },
        ("id",),
    ),
    "BranchList": _list("Branch"),
    "BranchDeleted": _obj(
        {"id": STR, "account": STR, "deleted": {"const": True}}, ("id", "account", "deleted")
    ),
    "Key": _obj(
        {
            "id": STR,
            "account": STR,
            "scopes": {"type": "array", "items": STR},
            "branch": NULLABLE_STR,
            "name": NULLABLE_STR,
            "plan": NULLABLE_STR,
            "quota": QUOTA_OBJECT,
            "created_at": NUM,
            "revoked_at": NULLABLE_NUM,
            "revoked": {"type": "boolean"},
            "previous_valid_until": NULLABLE_NUM,
        },
        ("id", "account", "scopes", "revoked"),
        closed=False,
    ),
    "KeyWithSecret": {
        "allOf": [
            ref("Key"),
            _obj({"key": {"type": "string", "pattern": "^ek_"}}, ("key",), closed=False),
        ]
    },
    "KeyCreate": _obj(
        {
            "account": {"type": "string", "maxLength": 64},
            "branch": _nullable({"type": "string", "maxLength": 64}),
            "scopes": {
                "type": "array",
                "maxItems": 8,
                "minItems": 1,
                "items": {"enum": ["ai_gateway:invoke", "ai_gateway:admin"]},
            },
            "name": _nullable({"type": "string", "maxLength": 200}),
            "plan": _nullable({"type": "string", "maxLength": 64}),
        },
        ("account",),
    ),
    "KeyList": _list("Key", PAGED),
    "UsageExportRow": _obj(
        {
            **{name: STR for name in ("account", "key", "model", "day")},
            **{
                name: INT
                for name in (
                    "requests",
                    "input_tokens",
                    "output_tokens",
                    "cached_tokens",
                    "cost_micros",
                )
            },
            "cost_usd": NUM,
        },
        closed=False,
    ),
    "Rotate": _obj({"grace_seconds": {"type": "integer", "minimum": 0, "maximum": 604800}}),
    "QuotaValues": _quota_values(),
    "QuotaView": _obj(
        {
            "scope": {"enum": ["key", "account"]},
            "id": STR,
            "plan": NULLABLE_STR,
            "overrides": QUOTA_OBJECT,
            "effective": QUOTA_OBJECT,
        },
        ("scope", "id", "plan", "overrides", "effective"),
    ),
    "LimitRow": _obj(
        {
            "name": STR,
            "scope": {"enum": ["key", "account"]},
            "kind": {"enum": ["requests", "tokens", "cost", "concurrency"]},
            "limit": NUM,
            "used": NUM,
            "remaining": NUM,
            "window_seconds": INT,
            "resets_in": NUM,
        },
        ("name", "scope", "kind", "limit", "used", "remaining", "window_seconds", "resets_in"),
    ),
    "Usage": _obj(
        {
            "scope": {"enum": ["key", "account"]},
            "id": STR,
            "account": STR,
            "in_flight": INT,
            "limits": {"type": "array", "items": ref("LimitRow")},
            "storage": ref("StorageUse"),
            "today": COUNTERS,
            "last_30_days": COUNTERS,
            "days": {
                "type": "array",
                "items": {"allOf": [COUNTERS, _obj({"day": STR}, ("day",), closed=False)]},
            },
        },
        (
            "scope",
            "id",
            "account",
            "in_flight",
            "limits",
            "storage",
            "today",
            "last_30_days",
            "days",
        ),
    ),
    "StorageUse": _obj(
        {
            "used_bytes": INT,
            "responses": INT,
            "storage_bytes": {"type": ["integer", "null"]},
            "remaining_bytes": {"type": ["integer", "null"]},
            "max_stored_response_bytes": INT,
        },
        (
            "used_bytes",
            "responses",
            "storage_bytes",
            "remaining_bytes",
            "max_stored_response_bytes",
        ),
    ),
    "Plan": _obj(
        {"name": STR, "description": STR, "limits": QUOTA_OBJECT},
        ("name", "description", "limits"),
    ),
    "PlanList": _list("Plan"),
    "AuditEntry": _obj(
        {
            "id": STR,
            "at": NUM,
            "actor": STR,
            "actor_account": NULLABLE_STR,
            "action": STR,
            "target": STR,
            "account": NULLABLE_STR,
            "details": {"type": "object"},
        },
        ("id", "at", "actor", "action", "target"),
        closed=False,
    ),
    "AuditList": _list("AuditEntry", {"next_before": NULLABLE_STR}),
}


def schemas_for(plans: list[str]) -> dict[str, Any]:
    """The component schemas, with plan fields limited to the configured plans."""
    out = dict(SCHEMAS)
    plan = {"enum": plans}
    out["AccountCreate"] = _obj(
        {"id": {"type": "string", "pattern": ID_PATTERN}, "plan": plan}, ("id",)
    )
    out["PlanSet"] = _obj({"plan": plan}, ("plan",))
    out["KeyPlanSet"] = _obj({"plan": _nullable(plan)}, ("plan",))
    create = dict(SCHEMAS["KeyCreate"])
    create["properties"] = {**create["properties"], "plan": _nullable(plan)}
    out["KeyCreate"] = create
    return out

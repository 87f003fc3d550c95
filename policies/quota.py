"""Quota rules: the fields a plan or an override may set, their validation, and the effective
rules of one scope (a key or an account) once a plan and its overrides are merged."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from policies.access import ACCESS_FIELDS, AccessError, validate_access

Strategy = Literal["moving-window", "sliding-window-counter"]
STRATEGIES: tuple[Strategy, ...] = ("moving-window", "sliding-window-counter")
Period = Literal["second", "minute", "hour", "day", "week", "month", "rolling_7d", "rolling_30d"]
# Rolling budgets: the last N days, today included (in the budget's time zone), counted per day.
ROLLING_DAYS: dict[str, int] = {"rolling_7d": 7, "rolling_30d": 30}
CounterKind = Literal["tokens", "cost"]

# Request-rate limits (counted by the `limits` library): field -> window.
REQUEST_FIELDS: dict[str, Period] = {
    "requests_per_second": "second",
    "requests_per_minute": "minute",
    "requests_per_hour": "hour",
    "requests_per_day": "day",
}
# Token windows and budgets (counted by the reservation script): field -> window.
TOKEN_FIELDS: dict[str, Period] = {
    "tokens_per_minute": "minute",
    "tokens_per_hour": "hour",
    "tokens_per_day": "day",
    "tokens_per_week": "week",
    "tokens_per_month": "month",
    "tokens_per_7_days": "rolling_7d",
    "tokens_per_30_days": "rolling_30d",
}
COST_FIELDS: dict[str, Period] = {
    "cost_per_day_usd": "day",
    "cost_per_week_usd": "week",
    "cost_per_month_usd": "month",
    "cost_per_7_days_usd": "rolling_7d",
    "cost_per_30_days_usd": "rolling_30d",
}
# Stored responses of an account (records, input and output items, event logs): the bytes they
# may hold in all, and the bytes one of them may hold. Counted per account only.
STORAGE_FIELDS = ("storage_bytes", "max_stored_response_bytes")
INT_FIELDS = (
    *REQUEST_FIELDS,
    *TOKEN_FIELDS,
    "max_concurrent",
    "default_max_output_tokens",
    *STORAGE_FIELDS,
)
LIMIT_FIELDS = (*REQUEST_FIELDS, *TOKEN_FIELDS, *COST_FIELDS, "max_concurrent", "storage_bytes")
SETTING_FIELDS = (
    "strategy",
    "default_max_output_tokens",
    "bytes_per_token",
    "max_stored_response_bytes",
)
QUOTA_FIELDS = (*LIMIT_FIELDS, *SETTING_FIELDS)
# Budget settings that are not numbers: the zone calendar windows (day, week, month) follow,
# and the fractions of each budget at which an alert is sent.
BUDGET_FIELDS = ("budget_timezone", "alert_thresholds")
MAX_THRESHOLDS = 10
# What a plan or an override table may set: the quota fields, budget settings, access lists.
TABLE_FIELDS = (*QUOTA_FIELDS, *BUDGET_FIELDS, *ACCESS_FIELDS)
MAX_LIMIT = 10**15
FALLBACK_OUTPUT_CAP = 4096
# One stored response's cap when no plan sets one, and the largest a plan may set: a record is
# written to Redis as one value, and a Redis value holds at most 512 MB.
FALLBACK_RESPONSE_CAP = 64 * 1024 * 1024
MAX_RESPONSE_CAP = 256 * 1024 * 1024
MIN_RESPONSE_CAP = 1024
# The range each numeric field accepts, bounds included. Every value a quota computes with
# stays finite and exact: a cost budget is counted in micro-USD (so at least one, and at most
# MAX_LIMIT of them), an output cap no model comes near, and a bytes-per-token ratio that keeps
# an estimate within 4x of the body's size (5e-324 made every estimate infinite: a 500).
MAX_CONCURRENT = 1_000_000
MAX_OUTPUT_CAP = 10_000_000
BYTES_PER_TOKEN_RANGE = (0.25, 64.0)
FIELD_RANGES: dict[str, tuple[float, float]] = {
    **{name: (1, MAX_LIMIT) for name in (*REQUEST_FIELDS, *TOKEN_FIELDS)},
    **{name: (0.000001, MAX_LIMIT / 1_000_000) for name in COST_FIELDS},
    "max_concurrent": (1, MAX_CONCURRENT),
    "default_max_output_tokens": (1, MAX_OUTPUT_CAP),
    "bytes_per_token": BYTES_PER_TOKEN_RANGE,
    "storage_bytes": (1, MAX_LIMIT),
    "max_stored_response_bytes": (MIN_RESPONSE_CAP, MAX_RESPONSE_CAP),
}

# How a message and a header token name each limit.
DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "requests_per_second": ("requests per second", "rps"),
    "requests_per_minute": ("requests per minute", "rpm"),
    "requests_per_hour": ("requests per hour", "rph"),
    "requests_per_day": ("requests per day", "rpd"),
    "tokens_per_minute": ("tokens per minute", "tpm"),
    "tokens_per_hour": ("tokens per hour", "tph"),
    "tokens_per_day": ("tokens per day", "tpd"),
    "tokens_per_week": ("tokens per week", "tpw"),
    "tokens_per_month": ("tokens per month", "tpmo"),
    "tokens_per_7_days": ("tokens in any 7 days", "tp7d"),
    "tokens_per_30_days": ("tokens in any 30 days", "tp30d"),
    "cost_per_day_usd": ("USD of cost budget per day", "cpd"),
    "cost_per_week_usd": ("USD of cost budget per week", "cpw"),
    "cost_per_month_usd": ("USD of cost budget per month", "cpmo"),
    "cost_per_7_days_usd": ("USD of cost budget in any 7 days", "cp7d"),
    "cost_per_30_days_usd": ("USD of cost budget in any 30 days", "cp30d"),
    "max_concurrent": ("concurrent requests", "conc"),
    "storage_bytes": ("bytes of stored responses", "stb"),
}


class QuotaError(ValueError):
    """An invalid quota field; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"'{field}': {message}")
        self.field = field
        self.message = message


def _show(bound: float) -> str:
    """A bound as a message writes it: 1000000, 0.25, 0.000001."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:.6f}".rstrip("0")


def _check_value(name: str, value: Any) -> Any:
    if name == "strategy":
        if value not in STRATEGIES:
            raise QuotaError(name, f"must be one of {list(STRATEGIES)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QuotaError(name, "expected a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise QuotaError(name, "must be a finite number")
    if isinstance(value, float) and value.is_integer() and name in INT_FIELDS:
        value = int(value)  # JSON Schema counts 5.0 as an integer
    if name in INT_FIELDS and not isinstance(value, int):
        raise QuotaError(name, "expected an integer")
    low, high = FIELD_RANGES[name]
    if not low <= value <= high:
        raise QuotaError(name, f"must be between {_show(low)} and {_show(high)}")
    return value


def known_zone(name: str) -> bool:
    """Whether `name` is a time zone of the IANA database."""
    if not 0 < len(name) <= 64 or name.startswith(("/", ".")):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _check_budget_setting(name: str, value: Any) -> Any:
    if name == "budget_timezone":
        if not isinstance(value, str) or not known_zone(value):
            raise QuotaError(name, "an IANA time zone name, e.g. 'Europe/Paris' or 'UTC'")
        return value
    if not isinstance(value, list) or len(value) > MAX_THRESHOLDS:
        raise QuotaError(name, f"an array of at most {MAX_THRESHOLDS} fractions: [0.5, 0.8, 1]")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise QuotaError(name, "each a number: a fraction of the budget")
        if not (math.isfinite(item) and 0 < item <= 10):
            raise QuotaError(name, "each a fraction above 0 and at most 10")
    return sorted({float(item) for item in value})


def validate_quota(data: Any, *, allow_null: bool = True) -> dict[str, Any]:
    """Check a quota table (plan body or override); null (where allowed) lifts a plan's limit
    or access list."""
    if not isinstance(data, Mapping):
        raise QuotaError("quota", "expected an object")
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name not in TABLE_FIELDS:
            raise QuotaError(
                str(name)[:100], f"unknown quota field; the fields are {', '.join(TABLE_FIELDS)}"
            )
        if value is None:
            if not allow_null or name in SETTING_FIELDS:
                raise QuotaError(name, "must not be null")
            out[name] = None
        elif name in BUDGET_FIELDS:
            out[name] = _check_budget_setting(name, value)
        elif name in ACCESS_FIELDS:
            try:
                out[name] = validate_access(name, value)
            except AccessError as exc:
                raise QuotaError(exc.field, exc.message) from exc
        else:
            out[name] = _check_value(name, value)
    return out


@dataclass(frozen=True, slots=True)
class RequestRule:
    """N requests per window."""

    field: str
    period: Period
    limit: int


@dataclass(frozen=True, slots=True)
class CounterRule:
    """Tokens or cost (in micro-USD) per window or calendar period."""

    field: str
    kind: CounterKind
    period: Period
    limit: int


@dataclass(frozen=True, slots=True)
class Rules:
    """The effective limits of one scope."""

    strategy: Strategy = "moving-window"
    requests: tuple[RequestRule, ...] = ()
    counters: tuple[CounterRule, ...] = ()
    max_concurrent: int | None = None
    default_max_output_tokens: int = FALLBACK_OUTPUT_CAP
    bytes_per_token: float = 2.0
    storage_bytes: int | None = None  # the account's stored responses, in bytes (None: no limit)
    max_stored_response_bytes: int = FALLBACK_RESPONSE_CAP
    timezone: str = "UTC"  # where calendar budgets (day, week, month) begin and end
    alert_thresholds: tuple[float, ...] = ()  # fractions of each budget that send an alert

    @property
    def empty(self) -> bool:
        """True when no call is limited (storage is checked when a response is stored)."""
        return not self.requests and not self.counters and self.max_concurrent is None


def rules_from(values: Mapping[str, Any]) -> Rules:
    """Build rules from a merged, validated quota table (None values mean "no limit")."""
    requests = tuple(
        RequestRule(name, period, int(values[name]))
        for name, period in REQUEST_FIELDS.items()
        if values.get(name) is not None
    )
    tokens = tuple(
        CounterRule(name, "tokens", period, int(values[name]))
        for name, period in TOKEN_FIELDS.items()
        if values.get(name) is not None
    )
    costs = tuple(
        CounterRule(name, "cost", period, round(float(values[name]) * 1_000_000))
        for name, period in COST_FIELDS.items()
        if values.get(name) is not None
    )
    concurrent = values.get("max_concurrent")
    storage = values.get("storage_bytes")
    return Rules(
        strategy=values.get("strategy") or "moving-window",
        requests=requests,
        counters=tokens + costs,
        max_concurrent=int(concurrent) if concurrent is not None else None,
        default_max_output_tokens=int(
            values.get("default_max_output_tokens") or FALLBACK_OUTPUT_CAP
        ),
        bytes_per_token=float(values.get("bytes_per_token") or 2.0),
        storage_bytes=int(storage) if storage is not None else None,
        max_stored_response_bytes=int(
            values.get("max_stored_response_bytes") or FALLBACK_RESPONSE_CAP
        ),
        timezone=values.get("budget_timezone") or "UTC",
        alert_thresholds=tuple(values.get("alert_thresholds") or ()),
    )


def describe(field: str) -> tuple[str, str]:
    """(how a message names a limit, its short header token)."""
    return DESCRIPTIONS.get(field, (field.replace("_", " "), field))


def estimate_values(account: Mapping[str, Any], key: Mapping[str, Any] | None) -> dict[str, Any]:
    """The estimation settings of a call: the account's, which a key may only make stricter
    (a larger default output cap, fewer bytes per token), never looser. One estimate holds in
    every scope, so a key's own setting must not shrink what the account scope reserves."""
    values = dict(account)
    if not key:
        return values
    defaults = Rules()
    own_cap = key.get("default_max_output_tokens")
    if own_cap is not None:
        base = values.get("default_max_output_tokens") or defaults.default_max_output_tokens
        values["default_max_output_tokens"] = max(int(base), int(own_cap))
    own_ratio = key.get("bytes_per_token")
    if own_ratio is not None:
        base_ratio = values.get("bytes_per_token") or defaults.bytes_per_token
        values["bytes_per_token"] = min(float(base_ratio), float(own_ratio))
    return values

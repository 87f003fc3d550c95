"""Plans: named quota tables shipped in plans.toml, redefinable from the operator's config."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from policies.quota import QuotaError, Rules, rules_from, validate_quota

DEFAULT_PLAN = "default"
_PLAN_META = ("description",)


class PlanError(ValueError):
    """A plan declaration is invalid."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A named quota table."""

    name: str
    description: str
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Plans:
    """Every plan by name; "default" always exists."""

    plans: Mapping[str, Plan] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        return name in self.plans

    def names(self) -> list[str]:
        """Plan names, sorted."""
        return sorted(self.plans)

    def get(self, name: str | None) -> Plan:
        """A plan by name; an unknown name (a plan since removed from config) is the default."""
        return self.plans.get(name or DEFAULT_PLAN) or self.plans[DEFAULT_PLAN]

    def merged(self, name: str | None, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
        """A plan's values with overrides on top (an override of null lifts the plan's limit)."""
        values = dict(self.get(name).values)
        values.update(overrides or {})
        return values

    def key_values(self, name: str | None, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
        """A key's own table: its plan's values with overrides on top, or the overrides alone
        when it names no plan (its account's plan already bounds it)."""
        return self.merged(name, overrides) if name else dict(overrides or {})

    def rules(self, name: str | None, overrides: Mapping[str, Any] | None) -> Rules:
        """The effective rules of a scope."""
        return rules_from(self.merged(name, overrides))


def _plan(name: str, raw: Any) -> Plan:
    if not isinstance(raw, Mapping):
        raise PlanError(f"plans.{name}: expected a table")
    body = {k: v for k, v in raw.items() if k not in _PLAN_META}
    try:
        values = validate_quota(body, allow_null=False)
    except QuotaError as exc:
        raise PlanError(f"plans.{name}.{exc.field}: {exc.message}") from exc
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise PlanError(f"plans.{name}.description: expected a string")
    return Plan(name=name, description=description, values=values)


def default_plans_data() -> dict[str, Any]:
    """The packaged plans declaration."""
    text = resources.files("policies").joinpath("plans.toml").read_text("utf-8")
    return tomllib.loads(text)


def build_plans(data: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Plans:
    """Plans from a declaration; `extra` (config [quota.plans]) replaces or adds whole plans."""
    raw = dict(data.get("plans", {}))
    if extra is not None:
        if not isinstance(extra, Mapping):
            raise PlanError("quota.plans: expected a table of plans")
        raw.update(extra)
    plans = {str(name): _plan(str(name), body) for name, body in raw.items()}
    if DEFAULT_PLAN not in plans:
        plans[DEFAULT_PLAN] = Plan(DEFAULT_PLAN, "No limits.", {})
    for name in plans:
        if not name or len(name) > 64:
            raise PlanError(f"plans.{name}: a name of 1 to 64 characters")
    return Plans(plans)


def shipped_plans() -> Plans:
    """The plans in plans.toml, without operator changes."""
    return build_plans(default_plans_data())

"""Each caller's limits (`QuotaPlan`), derived from its key and account records once, and again
only when those records change."""

from __future__ import annotations

from edge.quota.demand import QuotaPlan, Scope, quota_plan
from edge.settings import QuotaSettings
from edge.store.records import Account, KeyRecord
from policies.quota import Rules, estimate_values, rules_from

MAX_PLANS = 100_000  # as many as the identity cache holds records


class PlanCache:
    """The plans of the callers seen lately, keyed by (account id, key id)."""

    def __init__(self, settings: QuotaSettings) -> None:
        self._settings = settings
        # (account id, key id) -> the records a plan was derived from, and the plan.
        self._plans: dict[tuple[str, str | None], tuple[Account, KeyRecord | None, QuotaPlan]] = {}

    def scopes(self, account: Account, key: KeyRecord | None) -> list[Scope]:
        """The key's own limits (its plan, if any, plus overrides), then the account's."""
        plans = self._settings.plans
        out = []
        if key is not None:
            values = plans.merged(key.plan, key.quota) if key.plan else dict(key.quota)
            out.append(Scope("key", f"key:{key.id}", rules_from(values)))
        out.append(Scope("account", "account", plans.rules(account.plan, account.quota)))
        return out

    def _estimate_rules(self, account: Account, key: KeyRecord | None) -> Rules:
        plans = self._settings.plans
        key_values = None
        if key is not None:
            key_values = plans.merged(key.plan, key.quota) if key.plan else dict(key.quota)
        return rules_from(estimate_values(plans.merged(account.plan, account.quota), key_values))

    def plan(self, account: Account, key: KeyRecord | None) -> QuotaPlan:
        """The caller's limits, derived once per cached record: the identity cache hands out the
        same record objects until they change or go stale, so a plan built from these very
        objects is current, and a quota change reaches it as fast as it reaches the cache."""
        name = (account.id, key.id if key is not None else None)
        found = self._plans.get(name)
        if found is not None and found[0] is account and found[1] is key:
            return found[2]
        plan = quota_plan(account.id, self.scopes(account, key), self._estimate_rules(account, key))
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()
        self._plans[name] = (account, key, plan)
        return plan

"""What one call asks of its limits: the request-rate hits, the counter holds and the in-flight
slots of each scope (the key, then its account), built from the effective rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from edge.store.quota import Hold, Slot, Window, counter_key, slots_key, window_key
from policies.quota import ROLLING_DAYS, CounterRule, RequestRule, Rules, describe
from policies.quota_estimate import Estimate, earlier_days, period_length, window
from policies.ratelimit import LimitState


@dataclass(frozen=True, slots=True)
class Scope:
    """A key or an account, with its effective rules."""

    name: str  # "key" or "account"
    ident: str  # "key:<id>" or "account"
    rules: Rules


@dataclass(frozen=True, slots=True)
class RateCheck:
    """One request-rate limit to count the call in."""

    scope: str
    rule: RequestRule
    window: Window

    def state(self, remaining: int, reset: float) -> LimitState:
        """This limit's state for headers and messages."""
        description, token = describe(self.rule.field)
        return LimitState(
            policy=f"{self.scope}-{token}",
            description=description,
            limit=self.rule.limit,
            remaining=remaining,
            window=self.window.seconds,
            reset=max(0.0, reset),
            scope=self.scope,
            kind="requests",
        )


@dataclass(frozen=True, slots=True)
class CounterCheck:
    """One token or cost limit, with the hold this call places on it. A rolling budget holds
    on today's counter, against its limit less `prior`, what its earlier days used."""

    scope: str
    rule: CounterRule
    hold: Hold
    length: int
    prior: int = 0
    ends: float = 0.0  # when room comes back: the window's end (a rolling budget's: tonight)

    def state(self, used: int, now: float) -> LimitState:
        """This limit's state once `used` (of the hold's counter) is counted."""
        description, token = describe(self.rule.field)
        total = used + self.prior
        return LimitState(
            policy=f"{self.scope}-{token}",
            description=description,
            limit=self.rule.limit,
            remaining=max(0, self.rule.limit - total),
            window=self.length,
            reset=max(0.0, (self.ends or self.hold.expires_at) - now),
            scope=self.scope,
            kind=self.rule.kind,
        )


@dataclass(frozen=True, slots=True)
class SlotCheck:
    """An in-flight set, with its limit (None: tracked only)."""

    scope: str
    slot: Slot

    def state(self, in_flight: int) -> LimitState:
        """The concurrency limit's state (for messages: it is no time window)."""
        limit = self.slot.limit or 0
        return LimitState(
            policy=f"{self.scope}-conc",
            description="concurrent requests",
            limit=limit,
            remaining=max(0, limit - in_flight),
            window=1,
            reset=1.0,
            scope=self.scope,
            kind="concurrency",
        )


@dataclass(slots=True)
class Demand:
    """Everything one call checks, and the estimate it holds."""

    estimate: Estimate
    rates: list[RateCheck] = field(default_factory=list)
    counters: list[CounterCheck] = field(default_factory=list)
    slots: list[SlotCheck] = field(default_factory=list)

    @property
    def holds(self) -> list[Hold]:
        """The counter holds, in order."""
        return [c.hold for c in self.counters]

    @property
    def windows(self) -> list[Window]:
        """The request-rate windows, in order."""
        return [c.window for c in self.rates]


@dataclass(frozen=True, slots=True)
class CounterPlan:
    """A token or cost limit of one scope, before a call's estimate and clock are known."""

    scope: str
    ident: str
    rule: CounterRule
    timezone: str = "UTC"  # where its calendar window begins and ends


@dataclass(frozen=True, slots=True)
class QuotaPlan:
    """A caller's limits as each of its calls checks them, less what changes from call to call
    (the estimate and the clock): derived once per cached key and account record."""

    account: str
    scopes: tuple[Scope, ...]
    estimate_rules: Rules  # the key's settings over its account's, for estimates
    rates: tuple[RateCheck, ...]
    counters: tuple[CounterPlan, ...]
    slots: tuple[SlotCheck, ...]

    def demand(
        self, estimate: Estimate, now: float, priors: Mapping[str, int] | None = None
    ) -> Demand:
        """The checks of one call; `priors`: what each rolling budget's earlier days used, by
        its counter's key (see `earlier_keys`)."""
        counters = []
        for plan in self.counters:
            rule = plan.rule
            bucket, end = window(rule.period, now, plan.timezone)
            amount = estimate.tokens if rule.kind == "tokens" else estimate.cost_micros
            key = counter_key(self.account, plan.ident, rule.field, bucket)
            length = period_length(rule.period, now)
            days = ROLLING_DAYS.get(rule.period)
            if days is None:
                hold = Hold(key=key, amount=amount, limit=rule.limit, expires_at=end)
                counters.append(CounterCheck(plan.scope, rule, hold, length))
                continue
            prior = (priors or {}).get(key, 0)
            # Today's counter is kept while it is one of the budget's days.
            kept = end + (days - 1) * 86400
            hold = Hold(key=key, amount=amount, limit=max(0, rule.limit - prior), expires_at=kept)
            counters.append(CounterCheck(plan.scope, rule, hold, length, prior, end))
        return Demand(estimate, list(self.rates), counters, list(self.slots))

    def earlier_keys(self, now: float) -> dict[str, list[str]]:
        """Per rolling budget, today's counter key and the keys of its earlier days."""
        out: dict[str, list[str]] = {}
        for plan in self.counters:
            rule = plan.rule
            if rule.period not in ROLLING_DAYS:
                continue
            today = window(rule.period, now, plan.timezone)[0]
            days = earlier_days(rule.period, now, plan.timezone)
            key = counter_key(self.account, plan.ident, rule.field, today)
            out[key] = [counter_key(self.account, plan.ident, rule.field, d) for d in days]
        return out


def quota_plan(account: str, scopes: list[Scope], estimate_rules: Rules) -> QuotaPlan:
    """The checks of every scope, in order (the key's, then its account's)."""
    rates, counters, slots = [], [], []
    for scope in scopes:
        rules = scope.rules
        for rule in rules.requests:
            key = window_key(account, scope.ident, rule.field)
            rate = Window(key, rules.strategy, rule.limit, rule.period)
            rates.append(RateCheck(scope.name, rule, rate))
        counters += [
            CounterPlan(scope.name, scope.ident, rule, rules.timezone) for rule in rules.counters
        ]
        # Every call joins its scope's in-flight set, limited or not: open reservations stay
        # visible (usage read-back, leak checks) and a limit set later counts them at once.
        slot = Slot(slots_key(account, scope.ident), rules.max_concurrent)
        slots.append(SlotCheck(scope.name, slot))
    return QuotaPlan(
        account, tuple(scopes), estimate_rules, tuple(rates), tuple(counters), tuple(slots)
    )

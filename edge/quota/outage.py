"""What quotas do while the shared store is unreachable: the breaker that decides when, this
replica's share of each limit to decide on, and a count of every fallback decision (read by
metrics)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Literal

from edge.quota.breaker import Breaker
from edge.quota.demand import Demand, RateCheck, SlotCheck
from edge.quota.denials import BUDGET_UNAVAILABLE
from edge.quota.reservation import Reservation
from edge.settings import QuotaSettings
from edge.store import Store, StoreUnavailable
from edge.store.quota import QuotaStore, Slot
from edge.store.quota_memory import MemoryQuota

FallbackKind = Literal[
    "rate_local",  # a request-rate limit decided by this process's share of the limit
    "concurrency_local",  # a concurrency limit decided by this process's share
    "budget_closed",  # a token or cost limit could not be checked: refused with 503
    "budget_open",  # a token or cost limit could not be checked: admitted (fail-open policy)
    "settle_late",  # real usage recorded after the store came back (a retried settlement)
    "settle_lost",  # real usage could not be recorded; the reservation expires on its own
]
FALLBACK_KINDS: tuple[FallbackKind, ...] = (
    "rate_local",
    "concurrency_local",
    "budget_closed",
    "budget_open",
    "settle_late",
    "settle_lost",
)


@dataclass(slots=True)
class FallbackCounter:
    """Counts of fallback decisions by kind, for the metrics exporter to read."""

    counts: Counter[str] = field(default_factory=Counter)

    def record(self, kind: FallbackKind) -> None:
        """Count one decision."""
        self.counts[kind] += 1

    def snapshot(self) -> dict[str, int]:
        """Every kind's count (zeros included), as a plain dict."""
        return {kind: self.counts[kind] for kind in FALLBACK_KINDS}

    @property
    def total(self) -> int:
        """All fallback decisions."""
        return sum(self.counts.values())


class Outage:
    """Whether the shared store is to be asked now, and how to decide without it."""

    def __init__(self, store: Store, settings: QuotaSettings) -> None:
        self._store = store
        self._settings = settings
        self.breaker = Breaker()
        self.fallbacks = FallbackCounter()
        self.local: QuotaStore = MemoryQuota()  # where calls are counted while the store is down

    @property
    def trusted(self) -> bool:
        """Whether the shared store is asked now (true of a store that is not shared)."""
        return not self._store.shared or self.breaker.allows()

    def failed(self, exc: StoreUnavailable) -> bool:
        """Count a store failure; whether it has just opened the breaker."""
        was_closed = self.breaker.allows()
        self.breaker.failed(exc)
        return was_closed and not self.breaker.allows()

    def localize(self, demand: Demand, reservation: Reservation) -> None:
        """Rewrite a call's demand for a decision in this process: budgets are refused (503) or
        waived as configured, rate and concurrency limits become this replica's share."""
        reservation.local = True
        if demand.counters:
            if not self._settings.budgets_fail_open:
                self.fallbacks.record("budget_closed")
                raise BUDGET_UNAVAILABLE
            self.fallbacks.record("budget_open")
            demand.counters = []
            reservation.holds = []
        demand.rates = [self._share(c) for c in demand.rates]
        if demand.rates:
            self.fallbacks.record("rate_local")
        if any(s.slot.limit is not None for s in demand.slots):
            self.fallbacks.record("concurrency_local")
        demand.slots = [self._share_slot(s) for s in demand.slots]

    def _share(self, check: RateCheck) -> RateCheck:
        """This replica's share of a rate limit while the limits cannot be shared."""
        limit = max(1, check.rule.limit // self._settings.expected_replicas)
        return RateCheck(check.scope, check.rule, replace(check.window, limit=limit))

    def _share_slot(self, check: SlotCheck) -> SlotCheck:
        limit = check.slot.limit
        if limit is not None:
            limit = max(1, limit // self._settings.expected_replicas)
        return SlotCheck(check.scope, Slot(check.slot.key, limit))

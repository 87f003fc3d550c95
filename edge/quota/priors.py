"""Rolling budgets' earlier days: what a budget of the last 7 or 30 days used before today,
read once per process and day for each of its counters.

Earlier days' counters only shrink after today began (a call reserved before midnight settles
at or under its hold), so a sum read once stays an upper bound: a rolling budget checked with
it is never exceeded, and at worst refuses a little early until tomorrow's read.
"""

from __future__ import annotations

from edge.quota.demand import QuotaPlan
from edge.store import Store

MAX_REMEMBERED = 50_000  # counters of today whose earlier days are known here


class Priors:
    """Earlier days' use of rolling budgets, by today's counter key."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[str, int] = {}

    async def of(self, plan: QuotaPlan, now: float) -> dict[str, int]:
        """What each rolling budget of `plan` used on its earlier days (raises StoreUnavailable
        when they must be read and cannot be)."""
        wanted = plan.earlier_keys(now)
        if not wanted:
            return {}
        missing = {today: keys for today, keys in wanted.items() if today not in self._known}
        if missing:
            keys = [key for earlier in missing.values() for key in earlier]
            values, _ = await self._store.quota.read(keys, [])
            if len(self._known) + len(missing) > MAX_REMEMBERED:
                self._known.clear()  # today's keys change daily: yesterday's are of no use
            start = 0
            for today, earlier in missing.items():
                self._known[today] = sum(values[start : start + len(earlier)])
                start += len(earlier)
        return {today: self._known[today] for today in wanted}

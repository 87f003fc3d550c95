"""Request-rate windows in this process, counted by the `limits` library over its
MemoryStorage: the `memory://` store's windows, and each replica's share of a limit while Redis
is unreachable.

On Redis the windows are counted by the reservation script instead: there every limit of a call
must be checked, then all counted, atomically and in one round trip, which `limits` (one limit
per call, and a binary search over a list for every statistic) cannot do. In process there is no
round trip to save: `MemoryQuota` makes check-all-then-count-all atomic by holding its lock over
the whole reservation, so `limits` decides here with its own strategies, and the states are
computed from its counts by the same functions as Redis's (`policies.rate_windows`).
"""

from __future__ import annotations

import time

from limits import (
    RateLimitItem,
    RateLimitItemPerDay,
    RateLimitItemPerHour,
    RateLimitItemPerMinute,
    RateLimitItemPerSecond,
)
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.limits import safe_string

from edge.store.quota import Window
from policies.quota import Period, Strategy
from policies.rate_windows import (
    WindowState,
    moving_decided,
    moving_read,
    sliding_decided,
    sliding_read,
)

NAMESPACE = "edge:rl"


class _StableKey(RateLimitItem):
    """Keyed without the amount: changing a limit keeps its history, so a raised limit has room
    at once and a lowered one is not reset to zero."""

    def key_for(self, *identifiers: bytes | str | int | float) -> str:
        """namespace/identifiers/multiples/granularity."""
        parts = [safe_string(i) for i in identifiers]
        return "/".join([self.namespace, *parts, str(self.multiples), self.GRANULARITY.name])


class _PerSecond(_StableKey, RateLimitItemPerSecond):
    pass


class _PerMinute(_StableKey, RateLimitItemPerMinute):
    pass


class _PerHour(_StableKey, RateLimitItemPerHour):
    pass


class _PerDay(_StableKey, RateLimitItemPerDay):
    pass


_ITEMS: dict[str, type[RateLimitItem]] = {
    "second": _PerSecond,
    "minute": _PerMinute,
    "hour": _PerHour,
    "day": _PerDay,
}


def rate_item(period: Period, amount: int) -> RateLimitItem:
    """A `limits` item for N requests per period."""
    return _ITEMS[period](amount, namespace=NAMESPACE)


class LocalWindows:
    """Moving windows and sliding window counters in one process's memory."""

    def __init__(self) -> None:
        self._storage = MemoryStorage()
        self._limiters: dict[Strategy, RateLimiter] = {
            "moving-window": MovingWindowRateLimiter(self._storage),
            "sliding-window-counter": SlidingWindowCounterRateLimiter(self._storage),
        }

    async def allows(self, window: Window) -> bool:
        """Whether one more request fits (nothing is counted)."""
        item = rate_item(window.period, window.limit)
        return await self._limiters[window.strategy].test(item, window.key)

    async def hit(self, window: Window) -> None:
        """Count one request (after `allows`, under the caller's lock, so it fits)."""
        item = rate_item(window.period, window.limit)
        await self._limiters[window.strategy].hit(item, window.key)

    async def state(self, window: Window, allowed: bool | None) -> WindowState:
        """The window's state: after a decision on one more request (`allowed`; its counts are
        read before the request is counted), or as it stands (None)."""
        item = rate_item(window.period, window.limit)
        key = item.key_for(window.key)
        limit, period = window.limit, window.seconds
        if window.strategy == "sliding-window-counter":
            previous, _, current, current_ttl = await self._storage.get_sliding_window(key, period)
            left = current_ttl - period  # the current window's ttl runs one period past its end
            if allowed is None:
                return sliding_read(limit, period, previous, current, left)
            return sliding_decided(limit, period, previous, current, left, allowed)
        start, count = await self._storage.get_moving_window(key, limit, period)
        now = time.time()
        oldest_age = now - start if count else 0.0
        if allowed is None:
            return moving_read(limit, period, count, oldest_age)
        pivot_age = 0.0
        if not allowed and count >= limit:
            # The limit-th newest request: once it leaves the window, one more fits.
            pivot_age = now - self._storage.events[key][limit - 1].atime
        return moving_decided(limit, period, count, oldest_age, pivot_age, allowed)

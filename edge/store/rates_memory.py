"""Request-rate windows in this process: the `memory://` store's windows, and each replica's
share of a limit while Redis is unreachable.

On Redis the windows are counted by the reservation script: there every limit of a call must be
checked, then all counted, atomically and in one round trip, which `limits` (one limit per call)
cannot do. In process there is no round trip to save: `MemoryQuota` makes check-all-then-count-
all atomic by holding its lock over the whole reservation, and the states are computed from the
counts by the same functions as Redis's (`policies.rate_windows`).

Sliding window counters are `limits`' own, through its public API (its strategy decides and
counts, its storage's `get_sliding_window` reads the two counters). A moving window is kept here,
as the script keeps its sorted set: a refusal's exact Retry-After needs the age of the limit-th
newest request, which `limits` keeps but does not expose (it reports the oldest one only).
"""

from __future__ import annotations

import time
from collections import deque

from limits import (
    RateLimitItem,
    RateLimitItemPerDay,
    RateLimitItemPerHour,
    RateLimitItemPerMinute,
    RateLimitItemPerSecond,
)
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from edge.store.quota import Window
from policies.quota import Period
from policies.rate_windows import (
    WindowState,
    moving_decided,
    moving_read,
    sliding_decided,
    sliding_read,
)

NAMESPACE = "edge:rl"
SWEEP_EVERY = 4096  # moving windows counted between two sweeps of the idle ones


def _text(value: bytes | str | int | float) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _StableKey(RateLimitItem):
    """Keyed without the amount: changing a limit keeps its history, so a raised limit has room
    at once and a lowered one is not reset to zero."""

    def key_for(self, *identifiers: bytes | str | int | float) -> str:
        """namespace/identifiers/multiples/granularity."""
        parts = [_text(i) for i in identifiers]
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


class MovingWindows:
    """Each window's request times, oldest first, trimmed to the window as the script trims
    its sorted set. Keyed without the limit, like every window."""

    def __init__(self) -> None:
        self._times: dict[str, tuple[int, deque[float]]] = {}  # key -> (period, times)
        self._hits = 0

    def _live(self, window: Window, now: float) -> deque[float]:
        found = self._times.get(f"{window.key}/{window.seconds}")
        if found is None:
            return deque()
        times = found[1]
        while times and times[0] <= now - window.seconds:
            times.popleft()
        return times

    def allows(self, window: Window) -> bool:
        """Whether one more request fits."""
        return len(self._live(window, time.time())) < window.limit

    def hit(self, window: Window) -> None:
        """Count one request."""
        now = time.time()
        self._hits += 1
        if self._hits % SWEEP_EVERY == 0:
            self._sweep(now)
        key = f"{window.key}/{window.seconds}"
        self._times.setdefault(key, (window.seconds, deque()))[1].append(now)

    def _sweep(self, now: float) -> None:
        """Forget the windows whose every request has aged out: nothing else would."""
        self._times = {k: v for k, v in self._times.items() if v[1] and v[1][-1] > now - v[0]}

    def state(self, window: Window, allowed: bool | None) -> WindowState:
        """The window's state, as `LocalWindows.state` describes it."""
        now = time.time()
        times = self._live(window, now)
        limit, period, count = window.limit, window.seconds, len(times)
        oldest_age = now - times[0] if count else 0.0
        if allowed is None:
            return moving_read(limit, period, count, oldest_age)
        # The limit-th newest request: once it leaves the window, one more fits.
        pivot_age = now - times[-limit] if not allowed and count >= limit else 0.0
        return moving_decided(limit, period, count, oldest_age, pivot_age, allowed)


class LocalWindows:
    """Moving windows and sliding window counters in one process's memory."""

    def __init__(self) -> None:
        self._storage = MemoryStorage()
        self._sliding = SlidingWindowCounterRateLimiter(self._storage)
        self._moving = MovingWindows()

    async def allows(self, window: Window) -> bool:
        """Whether one more request fits (nothing is counted)."""
        if window.strategy == "moving-window":
            return self._moving.allows(window)
        return await self._sliding.test(rate_item(window.period, window.limit), window.key)

    async def hit(self, window: Window) -> None:
        """Count one request (after `allows`, under the caller's lock, so it fits)."""
        if window.strategy == "moving-window":
            self._moving.hit(window)
        else:
            await self._sliding.hit(rate_item(window.period, window.limit), window.key)

    async def state(self, window: Window, allowed: bool | None) -> WindowState:
        """The window's state: after a decision on one more request (`allowed`; its counts are
        read before the request is counted), or as it stands (None)."""
        if window.strategy == "moving-window":
            return self._moving.state(window, allowed)
        key = rate_item(window.period, window.limit).key_for(window.key)
        limit, period = window.limit, window.seconds
        previous, _, current, current_ttl = await self._storage.get_sliding_window(key, period)
        left = current_ttl - period  # the current window's ttl runs one period past its end
        if allowed is None:
            return sliding_read(limit, period, previous, current, left)
        return sliding_decided(limit, period, previous, current, left, allowed)

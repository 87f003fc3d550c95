"""Request-rate limits through the `limits` library: on the shared Redis (sharing the gateway's
connection pool) and, when Redis is unreachable, on a per-process storage with this replica's
share of each limit."""

from __future__ import annotations

from limits import (
    RateLimitItem,
    RateLimitItemPerDay,
    RateLimitItemPerHour,
    RateLimitItemPerMinute,
    RateLimitItemPerSecond,
)
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.limits import safe_string
from limits.util import WindowStats
from redis.asyncio import Redis

from policies.quota import Period, Strategy

NAMESPACE = "edge:rl"


class _StableKey(RateLimitItem):
    """A counter keyed without the amount: changing a limit keeps its history, so a raised
    limit has room at once and a lowered one is not reset to zero."""

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


def _limiters(storage: Storage) -> dict[Strategy, RateLimiter]:
    return {
        "moving-window": MovingWindowRateLimiter(storage),
        "sliding-window-counter": SlidingWindowCounterRateLimiter(storage),
    }


class RateLimits:
    """Shared limiters (when there is a Redis) and per-process ones."""

    def __init__(self, redis: Redis | None) -> None:
        self._local = _limiters(MemoryStorage())
        self._shared = self._local
        if redis is not None:
            storage = RedisStorage(
                "async+redis://",
                implementation="redispy",
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]
            )
            self._shared = _limiters(storage)

    async def hit(self, strategy: Strategy, item: RateLimitItem, ident: str, local: bool) -> bool:
        """Count one request; False when the limit is reached (nothing counted then)."""
        limiters = self._local if local else self._shared
        return await limiters[strategy].hit(item, ident)

    async def stats(
        self, strategy: Strategy, item: RateLimitItem, ident: str, local: bool
    ) -> WindowStats:
        """(reset time, remaining) of a limit."""
        limiters = self._local if local else self._shared
        return await limiters[strategy].get_window_stats(item, ident)

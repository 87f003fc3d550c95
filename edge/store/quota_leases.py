"""Request-rate leases in Redis: taking a slice of a window is one script call, ending it is
another (see the scripts' headers for how a slice is counted and given back)."""

from __future__ import annotations

from dataclasses import dataclass

from edge.store.clients import Client
from edge.store.driver import DriverBacked
from edge.store.quota import Window
from edge.store.quota_redis import MOVING, SLIDING, moving_key, sliding_keys
from edge.store.scripts import Batched, Script


@dataclass(frozen=True, slots=True)
class Grant:
    """What a lease got, and the window as it was before the slice was counted."""

    granted: int
    counted_in: str  # the key the slice is counted in (the one its end gives back to)
    x: int  # moving: requests in the window; sliding: the previous fixed window's count
    y: int  # moving: age of the oldest (ms); sliding: the current fixed window's count
    left: float  # sliding: seconds left in the current fixed window (moving: 0)


class RedisLeases(DriverBacked):
    """Takes and ends leases of request-rate windows in Redis."""

    def __init__(self, redis: Client) -> None:
        self._take = Batched(Script(redis, "quota_lease_take.lua"), redis)
        self._end = Batched(Script(redis, "quota_lease_return.lua"), redis)

    async def take(
        self, window: Window, want: int, share: int, now: float, ends: float, lease_id: str
    ) -> Grant:
        """Count a slice of up to `want` requests in the window, to be spent until `ends`; the
        store grants at most 1/`share` of what the window has left."""
        now_ms = int(now * 1000)
        period = window.seconds * 1000
        args: list[str | int] = [0, now_ms, window.limit, period, want, share, int(ends * 1000)]
        args.append(lease_id)
        if window.strategy == "sliding-window-counter":
            previous, current, left, expire_at = sliding_keys(window, now_ms)
            args[0] = SLIDING
            args += [left, expire_at]
            granted, x, y = (int(v) for v in await self._take([previous, current], args))
            return Grant(granted, current, x, y, left / 1000)
        args[0] = MOVING
        key = moving_key(window)
        granted, x, y = (int(v) for v in await self._take([key], args))
        return Grant(granted, key, x, y, 0.0)

    async def end(self, window: Window, grant: Grant, lease_id: str, spent: list[int]) -> int:
        """Give back what the lease did not spend; `spent`: per slot spent, its time in ms (0:
        given back after all). Returns how many were given back."""
        if window.strategy == "sliding-window-counter":
            used = sum(1 for at in spent if at)
            args: list[str | int] = [SLIDING, lease_id, grant.granted, used]
        else:
            args = [MOVING, lease_id, grant.granted, *spent]
        return int(await self._end([grant.counted_in], args))

"""Quota state in Redis: reserve and settle are one Lua script call (one round trip) each.

The reserve script counts the request-rate windows too, rather than the `limits` library: a
call's windows, token and cost counters and in-flight sets are checked together and counted only
if all have room, in the same round trip, and the script returns what the RateLimit headers and
an exact Retry-After need (O(log n) per window: a moving window is a sorted set trimmed by
score, a sliding window counter two plain counters)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from redis.asyncio.cluster import RedisCluster

from edge.store.clients import Client
from edge.store.driver import DriverBacked
from edge.store.quota import (
    SETTLED_KEEP_SECONDS,
    Hold,
    ReserveResult,
    Slot,
    Window,
    first_denied,
    reservation_key,
)
from edge.store.scripts import Batched, Script
from edge.store.usage import UsageRecord
from policies.leases import LEASE_SECONDS
from policies.rate_windows import (
    WindowState,
    moving_decided,
    moving_read,
    sliding_decided,
    sliding_read,
)

MOVING, SLIDING = 1, 2
# A moving window's set outlives its newest request by this much: a lease's members are scored
# at the lease's end, up to this far ahead.
KEEP_PAST_WINDOW_MS = int(LEASE_SECONDS * 1000)


def moving_key(window: Window) -> str:
    """The sorted set a moving window counts in."""
    return f"{window.key}:mw"


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def sliding_keys(window: Window, now_ms: int) -> tuple[str, str, int, int]:
    """(previous key, current key, ms left in the current window, when its counter may go):
    clock-aligned fixed windows, as `limits` aligns them in memory."""
    period = window.seconds * 1000
    index = now_ms // period
    left = (index + 1) * period - now_ms
    return f"{window.key}:sw:{index - 1}", f"{window.key}:sw:{index}", left, (index + 2) * period


class RedisQuota(DriverBacked):
    """The Redis implementation of QuotaStore."""

    def __init__(self, redis: Client) -> None:
        self._r = redis
        # Calls that come due while one is in flight share the next round trip.
        self._reserve = Batched(Script(redis, "quota_reserve.lua"), redis)
        self._settle = Batched(Script(redis, "quota_settle.lua"), redis)

    async def reserve(
        self,
        marker: str,
        member: str,
        holds: list[Hold],
        slots: list[Slot],
        lease: float,
        windows: Sequence[Window] = (),
    ) -> ReserveResult:
        """Check every limit, then count the request in every window, add every hold and join
        every slot, all or nothing."""
        now = _ms(time.time())
        keys = [marker, *(h.key for h in holds), *(s.key for s in slots)]
        args: list[str | int] = [now, _ms(lease), member, len(holds), len(slots), len(windows)]
        for hold in holds:
            args += [hold.amount, -1 if hold.limit is None else hold.limit, _ms(hold.expires_at)]
        args += [-1 if s.limit is None else s.limit for s in slots]
        lefts = []
        for window in windows:
            period = window.seconds * 1000
            if window.strategy == "sliding-window-counter":
                previous, current, left, expire_at = sliding_keys(window, now)
                keys += [previous, current]
                args += [SLIDING, window.limit, period, left, expire_at]
            else:
                keys.append(moving_key(window))
                args += [MOVING, window.limit, period, 0, KEEP_PAST_WINDOW_MS]
                left = 0
            lefts.append(left)
        raw = [int(v) for v in await self._reserve(keys, args)]
        nh, ns = len(holds), len(slots)
        values, counts = raw[1 : 1 + nh], raw[1 + nh : 1 + nh + ns]
        states = []
        for w, (window, left) in enumerate(zip(windows, lefts, strict=True)):
            allowed, x, y, z = raw[1 + nh + ns + 4 * w : 5 + nh + ns + 4 * w]
            limit, period = window.limit, window.seconds
            if window.strategy == "sliding-window-counter":
                states.append(sliding_decided(limit, period, x, y, left / 1000, bool(allowed)))
            else:
                states.append(moving_decided(limit, period, x, y / 1000, z / 1000, bool(allowed)))
        denied = first_denied(holds, slots, values, counts)
        return ReserveResult(bool(raw[0]), denied, values, counts, states)

    async def settle(
        self,
        marker: str,
        member: str,
        deltas: list[tuple[str, int]],
        slots: list[str],
        usage: UsageRecord | None = None,
    ) -> bool:
        """Apply deltas and leave the slots, once; record the usage in the same script."""
        keys = [marker, *(k for k, _ in deltas), *slots]
        args: list[str | int] = [member, len(deltas), len(slots), SETTLED_KEEP_SECONDS]
        args += [d for _, d in deltas]
        if usage is not None:
            keys += usage.keys
            args += [usage.retention_s, len(usage.counts)]
            for name, amount in usage.counts:
                args += [name, amount]
            args.append(usage.detail[1] if usage.detail is not None else "")
        return bool(int(await self._settle(keys, args)))

    async def read(self, counters: list[str], slots: list[str]) -> tuple[list[int], list[int]]:
        """Current counter values and in-flight counts (expired members excluded)."""
        now = _ms(time.time())
        pipe = self._r.pipeline(transaction=False)
        for key in counters:
            pipe.get(key)
        for key in slots:
            pipe.zcount(key, f"({now}", "+inf")
        rows = await pipe.execute()
        values = [int(v or 0) for v in rows[: len(counters)]]
        return values, [int(c) for c in rows[len(counters) :]]

    async def read_windows(self, windows: Sequence[Window]) -> list[WindowState]:
        """Each window's state now, without counting a request."""
        now = _ms(time.time())
        pipe = self._r.pipeline(transaction=False)
        lefts = []
        for window in windows:
            if window.strategy == "sliding-window-counter":
                previous, current, left, _ = sliding_keys(window, now)
                pipe.get(previous)
                pipe.get(current)
                lefts.append(left)
            else:
                since = f"({now - window.seconds * 1000}"
                pipe.zcount(moving_key(window), since, "+inf")
                pipe.zrangebyscore(moving_key(window), since, "+inf", 0, 1, withscores=True)
                lefts.append(0)
        rows = await pipe.execute()
        states = []
        for n, (window, left) in enumerate(zip(windows, lefts, strict=True)):
            first, second = rows[2 * n], rows[2 * n + 1]
            limit, period = window.limit, window.seconds
            if window.strategy == "sliding-window-counter":
                counts = int(first or 0), int(second or 0)
                states.append(sliding_read(limit, period, *counts, left / 1000))
            else:
                oldest = (now - second[0][1]) / 1000 if second else 0.0
                states.append(moving_read(limit, period, int(first), oldest))
        return states

    async def open_reservations(self, account: str) -> int:
        """Open reservations of an account."""
        pattern = reservation_key(account, "*").replace("{", "\\{").replace("}", "\\}")
        if isinstance(self._r, RedisCluster):
            # The account's keys share a slot: scan the node that holds it, not every node.
            node = self._r.get_node_from_key(reservation_key(account, ""))
            found = self._r.scan_iter(match=pattern, count=1000, target_nodes=node)
        else:
            found = self._r.scan_iter(match=pattern, count=1000)
        keys = [k async for k in found]
        values = await self._r.mget(keys) if keys else []
        return sum(1 for v in values if v is not None and v != b"settled")

    async def claim(self, key: str, ttl: float) -> bool:
        """True for the first claim of `key` until it expires (SET NX: one replica wins)."""
        return bool(await self._r.set(key, b"1", nx=True, px=max(1, int(ttl * 1000))))

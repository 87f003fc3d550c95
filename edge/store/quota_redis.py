"""Quota counters in Redis: reserve and settle are one Lua script call (one round trip) each."""

from __future__ import annotations

import time
from importlib import resources

from redis.asyncio import Redis

from edge.store.quota import Hold, ReserveResult, Slot, reservation_key
from edge.store.usage import RETENTION_SECONDS, UsageRecord


def _script(name: str) -> str:
    return resources.files("edge").joinpath("lua", name).read_text("utf-8")


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class RedisQuota:
    """The Redis implementation of QuotaStore."""

    def __init__(self, redis: Redis) -> None:
        self._r = redis
        # register_script sends EVALSHA and reloads the script after a Redis restart.
        self._reserve = redis.register_script(_script("quota_reserve.lua"))
        self._settle = redis.register_script(_script("quota_settle.lua"))

    async def reserve(
        self, marker: str, member: str, holds: list[Hold], slots: list[Slot], lease: float
    ) -> ReserveResult:
        """Check every limit, then add every hold and join every slot, all or nothing."""
        keys = [marker, *(h.key for h in holds), *(s.key for s in slots)]

        args: list[str | int] = [_ms(time.time()), _ms(lease), member, len(holds), len(slots)]
        for hold in holds:
            limit = -1 if hold.limit is None else hold.limit
            args += [hold.amount, limit, _ms(hold.expires_at)]
        args += [-1 if s.limit is None else s.limit for s in slots]
        raw = await self._reserve(keys=keys, args=args)
        admitted, denied = int(raw[0]), int(raw[1])
        numbers = [int(v) for v in raw[2:]]
        values, counts = numbers[: len(holds)], numbers[len(holds) :]
        return ReserveResult(bool(admitted), denied - 1 if denied else None, values, counts)

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
        args: list[str | int] = [member, len(deltas), len(slots), *(d for _, d in deltas)]
        if usage is not None:
            keys += usage.keys
            args += [RETENTION_SECONDS, len(usage.counts)]
            for name, amount in usage.counts:
                args += [name, amount]
        return bool(int(await self._settle(keys=keys, args=args)))

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

    async def open_reservations(self, account: str) -> int:
        """Open reservations of an account."""
        pattern = reservation_key(account, "*").replace("{", "\\{").replace("}", "\\}")
        return len([k async for k in self._r.scan_iter(match=pattern, count=1000)])

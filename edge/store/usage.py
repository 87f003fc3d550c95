"""Recorded usage per key and per account, by UTC day."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Protocol

from redis.asyncio import Redis

FIELDS = ("requests", "input_tokens", "output_tokens", "cached_tokens", "cost_micros")
USAGE = "edge:usage:"
RETENTION_SECONDS = 40 * 86400


def day_of(ts: float) -> str:
    """The UTC day a timestamp falls in, as YYYY-MM-DD."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class UsageStore(Protocol):
    """Counters of requests, tokens and cost."""

    async def record(self, scopes: list[str], counts: dict[str, int], ts: float) -> None:
        """Add counts to each scope (`key:<id>`, `account:<id>`) for the day of `ts`."""

    async def days(self, scope: str, days: list[str]) -> dict[str, dict[str, int]]:
        """Counters of one scope for the given days."""


class MemoryUsage:
    """Usage counters in a dict."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(FIELDS, 0)
        )

    async def record(self, scopes: list[str], counts: dict[str, int], ts: float) -> None:
        """Add counts to each scope for the day of `ts`."""
        day = day_of(ts)
        for scope in scopes:
            bucket = self._data[(scope, day)]
            for name, value in counts.items():
                bucket[name] = bucket.get(name, 0) + value

    async def days(self, scope: str, days: list[str]) -> dict[str, dict[str, int]]:
        """Counters of one scope for the given days."""
        return {d: dict(self._data.get((scope, d), dict.fromkeys(FIELDS, 0))) for d in days}


class RedisUsage:
    """Usage counters as one Redis hash per scope and day, written in one pipelined round trip."""

    def __init__(self, redis: Redis) -> None:
        self._r = redis

    async def record(self, scopes: list[str], counts: dict[str, int], ts: float) -> None:
        """Add counts to each scope for the day of `ts`."""
        day = day_of(ts)
        pipe = self._r.pipeline(transaction=False)
        for scope in scopes:
            name = f"{USAGE}{scope}:{day}"
            for field_name, value in counts.items():
                if value:
                    pipe.hincrby(name, field_name, value)
            pipe.expire(name, RETENTION_SECONDS)
        await pipe.execute()

    async def days(self, scope: str, days: list[str]) -> dict[str, dict[str, int]]:
        """Counters of one scope for the given days."""
        pipe = self._r.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(f"{USAGE}{scope}:{day}")
        rows = await pipe.execute()
        out = {}
        for day, row in zip(days, rows, strict=True):
            bucket = dict.fromkeys(FIELDS, 0)
            bucket.update({k.decode(): int(v) for k, v in row.items()})
            out[day] = bucket
        return out

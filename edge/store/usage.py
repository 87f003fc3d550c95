"""Recorded usage per key and per account, by UTC day.

A call's usage is written by the quota store's settle, in the same atomic step (and, on Redis,
the same round trip) that charges its real tokens and cost; this module names the hashes and
reads them back."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from edge.store.driver import DriverBacked

FIELDS = ("requests", "input_tokens", "output_tokens", "cached_tokens", "cost_micros")
USAGE = "edge:usage:"
RETENTION_SECONDS = 40 * 86400


def day_of(ts: float) -> str:
    """The UTC day a timestamp falls in, as YYYY-MM-DD."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def usage_key(scope: str, day: str) -> str:
    """The hash of one scope's (`key:<id>`, `account:<id>`) counters for one day."""
    return f"{USAGE}{scope}:{day}"


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """What one call adds to each of its scopes' counters for one day."""

    scopes: tuple[str, ...]
    counts: tuple[tuple[str, int], ...]  # (field, amount); zeros are skipped when written
    day: str

    @property
    def keys(self) -> list[str]:
        """The hashes the record adds to."""
        return [usage_key(scope, self.day) for scope in self.scopes]


class UsageStore(Protocol):
    """Counters of requests, tokens and cost."""

    async def days(self, scope: str, days: list[str]) -> dict[str, dict[str, int]]:
        """Counters of one scope for the given days."""


class MemoryUsage:
    """Usage counters in a dict."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(FIELDS, 0)
        )

    def add(self, record: UsageRecord) -> None:
        """Add a call's counts to each of its scopes (called by the memory quota's settle)."""
        for scope in record.scopes:
            bucket = self._data[(scope, record.day)]
            for name, value in record.counts:
                bucket[name] = bucket.get(name, 0) + value

    async def days(self, scope: str, days: list[str]) -> dict[str, dict[str, int]]:
        """Counters of one scope for the given days."""
        return {d: dict(self._data.get((scope, d), dict.fromkeys(FIELDS, 0))) for d in days}


class RedisUsage(DriverBacked):
    """Reads the usage hashes (one per scope and day) that the settle script writes."""

    def __init__(self, redis: Redis) -> None:
        self._r = redis

    async def days(self, scope: str, days: list[str]) -> dict[str, dict[str, int]]:
        """Counters of one scope for the given days."""
        pipe = self._r.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(usage_key(scope, day))
        rows = await pipe.execute()
        out = {}
        for day, row in zip(days, rows, strict=True):
            bucket = dict.fromkeys(FIELDS, 0)
            bucket.update({k.decode(): int(v) for k, v in row.items()})
            out[day] = bucket
        return out

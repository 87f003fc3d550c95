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
DETAIL = "edge:usage:detail:"  # per account and day: '<key id>\t<model>\t<field>' -> count
RETENTION_SECONDS = 90 * 86400  # unless the operator sets EDGE_USAGE_RETENTION_DAYS
NO_KEY = "-"  # the key column of a call made without an API key (a JWT)


def day_of(ts: float) -> str:
    """The UTC day a timestamp falls in, as YYYY-MM-DD."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def usage_key(scope: str, day: str) -> str:
    """The hash of one scope's (`key:<id>`, `account:<id>`) counters for one day."""
    return f"{USAGE}{scope}:{day}"


def detail_key(account: str, day: str) -> str:
    """The hash of one account's counters per key and model for one day."""
    return f"{DETAIL}{account}:{day}"


def split_detail(name: str) -> tuple[str, str, str] | None:
    """(key id, model, field) of a detail hash's field; None for anything else."""
    parts = name.split("\t")
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else None


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """What one call adds to each of its scopes' counters for one day."""

    scopes: tuple[str, ...]
    counts: tuple[tuple[str, int], ...]  # (field, amount); zeros are skipped when written
    day: str
    # (account, '<key id>\t<model>'): the call is also added to the account's detail hash.
    detail: tuple[str, str] | None = None
    retention_s: int = RETENTION_SECONDS

    @property
    def keys(self) -> list[str]:
        """The hashes the record adds to (the detail hash last)."""
        keys = [usage_key(scope, self.day) for scope in self.scopes]
        if self.detail is not None:
            keys.append(detail_key(self.detail[0], self.day))
        return keys


class UsageStore(Protocol):
    """Counters of requests, tokens and cost."""

    async def days(self, scope: str, days: list[str]) -> dict[str, dict[str, int]]:
        """Counters of one scope for the given days."""

    async def detail(self, account: str, days: list[str]) -> dict[str, dict[str, int]]:
        """One account's detail counters ('<key>\t<model>\t<field>' -> n) for the given days."""


class MemoryUsage:
    """Usage counters in a dict."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(FIELDS, 0)
        )
        self._detail: dict[tuple[str, str], dict[str, int]] = {}

    def add(self, record: UsageRecord) -> None:
        """Add a call's counts to each of its scopes (called by the memory quota's settle)."""
        for scope in record.scopes:
            bucket = self._data[(scope, record.day)]
            for name, value in record.counts:
                bucket[name] = bucket.get(name, 0) + value
        if record.detail is not None:
            account, prefix = record.detail
            found = self._detail.setdefault((account, record.day), {})
            for name, value in record.counts:
                if value:
                    field = f"{prefix}\t{name}"
                    found[field] = found.get(field, 0) + value

    async def days(self, scope: str, days: list[str]) -> dict[str, dict[str, int]]:
        """Counters of one scope for the given days."""
        return {d: dict(self._data.get((scope, d), dict.fromkeys(FIELDS, 0))) for d in days}

    async def detail(self, account: str, days: list[str]) -> dict[str, dict[str, int]]:
        """One account's detail counters for the given days."""
        return {d: dict(self._detail.get((account, d), {})) for d in days}


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

    async def detail(self, account: str, days: list[str]) -> dict[str, dict[str, int]]:
        """One account's detail counters ('<key>\t<model>\t<field>' -> n) for the given days."""
        pipe = self._r.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(detail_key(account, day))
        rows = await pipe.execute()
        return {
            day: {k.decode(): int(v) for k, v in row.items()}
            for day, row in zip(days, rows, strict=True)
        }

"""Recorded usage per key and per account, by UTC day.

A call's usage is written by the quota store's settle, in the same atomic step (and, on Redis,
the same round trip) that charges its real tokens and cost; this module names the hashes and
reads them back. Every hash carries its account's hash tag, as the quota keys the settle script
also writes do, so that script touches one slot of a Redis Cluster. Earlier releases named the
hashes without the tag: they are still read (and added in) until their retention ends."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

import orjson

from edge.store.clients import Client
from edge.store.driver import DriverBacked
from edge.store.redis_identity import KEY

FIELDS = ("requests", "input_tokens", "output_tokens", "cached_tokens", "cost_micros")
USAGE = "edge:usage:"
DETAIL = "detail"  # per account and day: '<key id>\t<model>\t<field>' -> count
RETENTION_SECONDS = 90 * 86400  # unless the operator sets EDGE_USAGE_RETENTION_DAYS
NO_KEY = "-"  # the key column of a call made without an API key (a JWT)


def day_of(ts: float) -> str:
    """The UTC day a timestamp falls in, as YYYY-MM-DD."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def usage_key(scope: str, day: str, account: str | None) -> str:
    """The hash of one scope's (`key:<id>`, `account:<id>`) counters for one day, in its
    account's slot (an untagged name for a record that names no account)."""
    if account is None:
        return legacy_usage_key(scope, day)
    return f"{USAGE}{{{account}}}:{scope}:{day}"


def detail_key(account: str, day: str) -> str:
    """The hash of one account's counters per key and model for one day."""
    return f"{USAGE}{{{account}}}:{DETAIL}:{day}"


def legacy_usage_key(scope: str, day: str) -> str:
    """Where earlier releases kept a scope's counters (no hash tag)."""
    return f"{USAGE}{scope}:{day}"


def legacy_detail_key(account: str, day: str) -> str:
    """Where earlier releases kept an account's detail counters (no hash tag)."""
    return f"{USAGE}{DETAIL}:{account}:{day}"


def scope_account(scope: str) -> str | None:
    """The account an `account:<id>` scope names; None for any other scope."""
    kind, _, ident = scope.partition(":")
    return ident if kind == "account" and ident else None


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
    account: str | None = None  # the call's account; else the detail's or an account scope's

    @property
    def owner(self) -> str | None:
        """The account whose slot the record's hashes are in."""
        if self.account is not None:
            return self.account
        if self.detail is not None:
            return self.detail[0]
        found = (scope_account(scope) for scope in self.scopes)
        return next((a for a in found if a is not None), None)

    @property
    def keys(self) -> list[str]:
        """The hashes the record adds to (the detail hash last)."""
        keys = [usage_key(scope, self.day, self.owner) for scope in self.scopes]
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

    async def days(
        self, scope: str, days: list[str], account: str | None = None
    ) -> dict[str, dict[str, int]]:
        """Counters of one scope for the given days."""
        return {d: dict(self._data.get((scope, d), dict.fromkeys(FIELDS, 0))) for d in days}

    async def detail(self, account: str, days: list[str]) -> dict[str, dict[str, int]]:
        """One account's detail counters for the given days."""
        return {d: dict(self._detail.get((account, d), {})) for d in days}


class RedisUsage(DriverBacked):
    """Reads the usage hashes (one per scope and day) that the settle script writes."""

    def __init__(self, redis: Client) -> None:
        self._r = redis

    async def _owner(self, scope: str) -> str | None:
        """The account of a scope: named by it, or read from the key's record."""
        found = scope_account(scope)
        kind, _, ident = scope.partition(":")
        if found is None and kind == "key":
            raw = await self._r.get(KEY + ident)
            owner = orjson.loads(raw).get("account") if raw else None
            found = owner if isinstance(owner, str) else None
        return found

    async def days(
        self, scope: str, days: list[str], account: str | None = None
    ) -> dict[str, dict[str, int]]:
        """Counters of one scope for the given days (an earlier release's hashes added in)."""
        owner = account or await self._owner(scope)
        names = [legacy_usage_key(scope, day) for day in days]
        if owner is not None:
            names += [usage_key(scope, day, owner) for day in days]
        rows = await self._hashes(names)
        out = {}
        for n, day in enumerate(days):
            bucket = dict.fromkeys(FIELDS, 0)
            for row in rows[n :: len(days)]:
                for k, v in row.items():
                    bucket[k] = bucket.get(k, 0) + v
            out[day] = bucket
        return out

    async def detail(self, account: str, days: list[str]) -> dict[str, dict[str, int]]:
        """One account's detail counters ('<key>\t<model>\t<field>' -> n) for the given days."""
        names = [detail_key(account, day) for day in days]
        rows = await self._hashes(names + [legacy_detail_key(account, day) for day in days])
        out: dict[str, dict[str, int]] = {}
        for n, day in enumerate(days):
            merged: dict[str, int] = {}
            for row in (rows[n], rows[n + len(days)]):
                for k, v in row.items():
                    merged[k] = merged.get(k, 0) + v
            out[day] = merged
        return out

    async def _hashes(self, names: list[str]) -> list[dict[str, int]]:
        """Each hash's fields, read in one pipeline (split per node on a cluster)."""
        pipe = self._r.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(name)
        rows = await pipe.execute()
        return [{k.decode(): int(v) for k, v in row.items()} for row in rows]

"""Per-process cache of keys, accounts and branch trees, invalidated across replicas.

Entries are fresh for `ttl` seconds (1 s by default: a revocation reaches every replica within
that even if the invalidation channel is down) and are dropped at once when any replica
publishes a change. When the store is unreachable, a stale entry is served rather than failing
every request; nothing newer could be known anyway. Once a load has failed, stale entries are
served at once while one reload per entry runs in the background, until a load succeeds: a
request does not wait out the store's timeout for every record it needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from edge.store import Store, StoreUnavailable
from edge.store.records import Account, Branch, KeyRecord

T = TypeVar("T")
STALE_LIMIT = 300.0
MAX_ENTRIES = 100_000


@dataclass(slots=True)
class _StoreHealth:
    """Shared by the caches of one store: once any load fails, none waits on the store."""

    failing: bool = False


@dataclass(slots=True)
class _Entry(Generic[T]):
    value: T
    fetched: float


class _Cache(Generic[T]):
    """TTL cache with single-flight loads and stale-if-error.

    A load runs in its own task, so a caller that goes away (client disconnect) does not
    cancel it for the other callers waiting on the same entry.
    """

    def __init__(self, ttl: float, health: _StoreHealth) -> None:
        self.ttl = ttl
        self._health = health
        self._entries: dict[str, _Entry[T]] = {}
        self._loading: dict[str, asyncio.Task[T]] = {}
        self._generation = 0  # bumped by every drop: a load begun before it is not cached

    def drop(self, name: str | None = None) -> None:
        self._generation += 1
        if name is None:
            self._entries.clear()
        else:
            self._entries.pop(name, None)

    async def get(self, name: str, load: Callable[[], Awaitable[T]]) -> T:
        entry = self._entries.get(name)
        age = time.monotonic() - entry.fetched if entry is not None else 0.0
        if entry is not None and age < self.ttl:
            return entry.value
        task = self._loading.get(name)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load(name, load, entry))
            task.add_done_callback(_consume)
            self._loading[name] = task
        if entry is not None and self._health.failing and age < STALE_LIMIT:
            return entry.value  # the reload goes on in the background
        return await asyncio.shield(task)

    async def _load(
        self, name: str, load: Callable[[], Awaitable[T]], stale: _Entry[T] | None
    ) -> T:
        generation = self._generation
        try:
            value = await load()
        except StoreUnavailable:
            self._health.failing = True
            if stale is not None and time.monotonic() - stale.fetched < STALE_LIMIT:
                return stale.value
            raise
        finally:
            self._loading.pop(name, None)
        self._health.failing = False
        if generation == self._generation:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[name] = _Entry(value, time.monotonic())
        return value


def _consume(task: asyncio.Task[Any]) -> None:
    """Retrieve a load's outcome so an error nobody awaited is not reported as lost."""
    if not task.cancelled():
        task.exception()


class IdentityCache:
    """Cached reads of the identity store, shared by the auth, branch and quota middlewares."""

    def __init__(self, store: Store, ttl: float = 1.0) -> None:
        self._store = store
        health = _StoreHealth()
        self._keys: _Cache[KeyRecord | None] = _Cache(ttl, health)
        self._accounts: _Cache[Account | None] = _Cache(ttl, health)
        self._branches: _Cache[dict[str, Branch]] = _Cache(ttl, health)
        store.invalidation.subscribe(self.invalidate)

    def invalidate(self, topic: str) -> None:
        """Drop entries for a topic: `key:<id>`, `account:<id>`, `branches:<account>` or `*`."""
        kind, _, name = topic.partition(":")
        if topic == "*":
            for cache in (self._keys, self._accounts, self._branches):
                cache.drop()
        elif kind == "key":
            self._keys.drop(name)
        elif kind == "account":
            self._accounts.drop(name)
        elif kind == "branches":
            self._branches.drop(name)

    async def key(self, key_id: str) -> KeyRecord | None:
        """A key record, or None when unknown (negative results are cached too)."""
        return await self._keys.get(key_id, lambda: self._store.identity.get_key(key_id))

    async def account(self, account_id: str) -> Account | None:
        """An account record."""
        return await self._accounts.get(
            account_id, lambda: self._store.identity.get_account(account_id)
        )

    async def branches(self, account_id: str) -> dict[str, Branch]:
        """An account's branch tree."""
        return await self._branches.get(
            account_id, lambda: self._store.identity.branches(account_id)
        )

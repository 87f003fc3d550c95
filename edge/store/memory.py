"""The embedded `memory://` store: one process, nothing to install."""

from __future__ import annotations

import asyncio
import bisect
import copy
import logging
from typing import Any

from edge.store.base import PAGE, AlreadyExists, Listener
from edge.store.records import Account, Branch, KeyRecord

log = logging.getLogger(__name__)


class MemoryIdentity:
    """Accounts, branches and keys in dicts; records are copied in and out like a real store."""

    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        self._branches: dict[str, dict[str, Branch]] = {}
        self._keys: dict[str, KeyRecord] = {}

    async def create_account(self, account: Account) -> None:
        """Insert; raises AlreadyExists."""
        if account.id in self._accounts:
            raise AlreadyExists(account.id)
        self._accounts[account.id] = copy.deepcopy(account)

    async def get_account(self, account_id: str) -> Account | None:
        """Fetch one account."""
        found = self._accounts.get(account_id)
        return copy.deepcopy(found) if found else None

    async def put_account(self, account: Account) -> None:
        """Replace an existing account."""
        self._accounts[account.id] = copy.deepcopy(account)

    async def list_accounts(self, after: str | None = None, limit: int = PAGE) -> list[Account]:
        """Up to `limit` accounts in id order, those after the id `after`."""
        ids = _page(self._accounts, after, limit)
        return [copy.deepcopy(self._accounts[i]) for i in ids]

    async def create_branch(self, branch: Branch) -> None:
        """Insert; raises AlreadyExists."""
        tree = self._branches.setdefault(branch.account, {})
        if branch.id in tree:
            raise AlreadyExists(branch.id)
        tree[branch.id] = copy.deepcopy(branch)

    async def delete_branch(self, account_id: str, branch_id: str) -> None:
        """Remove one branch."""
        self._branches.get(account_id, {}).pop(branch_id, None)

    async def branches(self, account_id: str) -> dict[str, Branch]:
        """An account's branches by id."""
        return copy.deepcopy(self._branches.get(account_id, {}))

    async def create_key(self, key: KeyRecord) -> None:
        """Insert; raises AlreadyExists."""
        if key.id in self._keys:
            raise AlreadyExists(key.id)
        self._keys[key.id] = copy.deepcopy(key)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        """Fetch one key."""
        found = self._keys.get(key_id)
        return copy.deepcopy(found) if found else None

    async def put_key(self, key: KeyRecord) -> None:
        """Replace an existing key."""
        self._keys[key.id] = copy.deepcopy(key)

    async def list_keys(
        self, account_id: str | None, after: str | None = None, limit: int = PAGE
    ) -> list[KeyRecord]:
        """Up to `limit` keys (of one account, or of all) in id order, after the id `after`."""
        keys = self._keys
        if account_id is not None:
            keys = {i: k for i, k in keys.items() if k.account == account_id}
        return [copy.deepcopy(keys[i]) for i in _page(keys, after, limit)]


def _page(records: dict[str, Any], after: str | None, limit: int) -> list[str]:
    """Up to `limit` ids in order, those after `after`."""
    ids = sorted(records)
    start = bisect.bisect_right(ids, after) if after is not None else 0
    return ids[start : start + limit]


class LocalInvalidation:
    """In one process, publishing is calling the listeners."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    async def publish(self, topic: str) -> None:
        """Call every listener now."""
        for listener in self._listeners:
            result = listener(topic)
            if asyncio.iscoroutine(result):
                await result

    def subscribe(self, listener: Listener) -> None:
        """Register a listener."""
        self._listeners.append(listener)

"""Accounts, branches and keys in Redis, as JSON values under `edge:` keys."""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from edge.store.base import AlreadyExists
from edge.store.driver import DriverBacked
from edge.store.records import Account, Branch, KeyRecord

ACCOUNT = "edge:acct:"
ACCOUNTS = "edge:accts"
BRANCHES = "edge:branches:"  # hash per account: branch id -> JSON
KEY = "edge:key:"
ACCOUNT_KEYS = "edge:acctkeys:"  # set per account


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisIdentity(DriverBacked):
    """The Redis implementation of IdentityStore."""

    def __init__(self, redis: Redis) -> None:
        self._r = redis

    async def _insert(self, key: str, value: dict[str, Any]) -> None:
        if not await self._r.set(key, orjson.dumps(value), nx=True):
            raise AlreadyExists(key)

    async def create_account(self, account: Account) -> None:
        """Insert; raises AlreadyExists."""
        await self._insert(ACCOUNT + account.id, account.to_json())
        await self._r.sadd(ACCOUNTS, account.id)

    async def get_account(self, account_id: str) -> Account | None:
        """Fetch one account."""
        raw = await self._r.get(ACCOUNT + account_id)
        return Account.from_json(orjson.loads(raw)) if raw else None

    async def put_account(self, account: Account) -> None:
        """Replace an existing account."""
        await self._r.set(ACCOUNT + account.id, orjson.dumps(account.to_json()))

    async def list_accounts(self) -> list[Account]:
        """All accounts."""
        ids = sorted(_text(m) for m in await self._r.smembers(ACCOUNTS))
        if not ids:
            return []
        raws = await self._r.mget([ACCOUNT + i for i in ids])
        return [Account.from_json(orjson.loads(r)) for r in raws if r]

    async def create_branch(self, branch: Branch) -> None:
        """Insert; raises AlreadyExists."""
        added = await self._r.hsetnx(
            BRANCHES + branch.account, branch.id, orjson.dumps(branch.to_json())
        )
        if not added:
            raise AlreadyExists(branch.id)

    async def delete_branch(self, account_id: str, branch_id: str) -> None:
        """Remove one branch."""
        await self._r.hdel(BRANCHES + account_id, branch_id)

    async def branches(self, account_id: str) -> dict[str, Branch]:
        """An account's branches by id."""
        raw = await self._r.hgetall(BRANCHES + account_id)
        return {_text(k): Branch.from_json(orjson.loads(v)) for k, v in raw.items()}

    async def create_key(self, key: KeyRecord) -> None:
        """Insert; raises AlreadyExists."""
        await self._insert(KEY + key.id, key.to_json())
        await self._r.sadd(ACCOUNT_KEYS + key.account, key.id)

    async def get_key(self, key_id: str) -> KeyRecord | None:
        """Fetch one key."""
        raw = await self._r.get(KEY + key_id)
        return KeyRecord.from_json(orjson.loads(raw)) if raw else None

    async def put_key(self, key: KeyRecord) -> None:
        """Replace an existing key."""
        await self._r.set(KEY + key.id, orjson.dumps(key.to_json()))

    async def list_keys(self, account_id: str | None) -> list[KeyRecord]:
        """Keys of one account, or all."""
        if account_id is None:
            names = [k async for k in self._r.scan_iter(match=KEY + "*", count=500)]
        else:
            ids = await self._r.smembers(ACCOUNT_KEYS + account_id)
            names = [KEY + _text(i) for i in sorted(ids)]
        if not names:
            return []
        raws = await self._r.mget(names)
        return sorted(
            (KeyRecord.from_json(orjson.loads(r)) for r in raws if r), key=lambda k: k.created_at
        )

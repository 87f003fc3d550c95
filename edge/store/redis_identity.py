"""Accounts, branches and keys in Redis, as JSON values under `edge:` keys."""

from __future__ import annotations

from typing import Any

import orjson

from edge.store.base import PAGE, AlreadyExists
from edge.store.clients import Client
from edge.store.driver import DriverBacked
from edge.store.records import Account, Branch, KeyRecord

ACCOUNT = "edge:acct:"
BRANCHES = "edge:branches:"  # hash per account: branch id -> JSON
KEY = "edge:key:"
# Listings page through index sorted sets (every score 0, so ordered by id: a cursor is the last
# id seen), never through a scan of the keyspace. On a Redis Cluster each index is one key on one
# node; they change only when an admin creates an account or a key, never on a client's call.
ACCOUNTS_INDEX = "edge:idx:accts"
KEYS_INDEX = "edge:idx:keys"
ACCOUNT_KEYS_INDEX = "edge:idx:acctkeys:"  # per account
# The unordered sets earlier releases kept (accounts; keys per account): still written, so a
# replica of an earlier release lists what this one creates, and copied into the indexes once.
ACCOUNTS = "edge:accts"
ACCOUNT_KEYS = "edge:acctkeys:"
INDEXED = "edge:idx:built"  # set once the indexes hold what the sets held


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisIdentity(DriverBacked):
    """The Redis implementation of IdentityStore."""

    def __init__(self, redis: Client) -> None:
        self._r = redis
        self._indexed = False  # this process has seen the indexes built

    async def _insert(self, key: str, value: dict[str, Any]) -> None:
        if not await self._r.set(key, orjson.dumps(value), nx=True):
            raise AlreadyExists(key)

    async def create_account(self, account: Account) -> None:
        """Insert; raises AlreadyExists."""
        await self._insert(ACCOUNT + account.id, account.to_json())
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.zadd(ACCOUNTS_INDEX, {account.id: 0})
            pipe.sadd(ACCOUNTS, account.id)
            await pipe.execute()

    async def get_account(self, account_id: str) -> Account | None:
        """Fetch one account."""
        raw = await self._r.get(ACCOUNT + account_id)
        return Account.from_json(orjson.loads(raw)) if raw else None

    async def put_account(self, account: Account) -> None:
        """Replace an existing account."""
        await self._r.set(ACCOUNT + account.id, orjson.dumps(account.to_json()))

    async def list_accounts(self, after: str | None = None, limit: int = PAGE) -> list[Account]:
        """Up to `limit` accounts in id order, those after the id `after`."""
        ids = await self._page(ACCOUNTS_INDEX, after, limit)
        if not ids:
            return []
        raws = await self._values([ACCOUNT + i for i in ids])
        return [Account.from_json(orjson.loads(r)) for r in raws if r]

    async def _values(self, keys: list[str]) -> list[bytes | None]:
        """GETs in one pipeline: the records are spread over a cluster's slots, where one MGET
        may name keys of a single slot only (a cluster pipeline sends each node its part)."""
        pipe = self._r.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        return list(await pipe.execute())

    async def _page(self, index: str, after: str | None, limit: int) -> list[str]:
        await self._build_indexes()
        start = f"({after}" if after is not None else "-"
        found = await self._r.zrange(index, start, "+", bylex=True, offset=0, num=limit)
        return [_text(m) for m in found if isinstance(m, bytes | str)]

    async def _build_indexes(self) -> None:
        """Copy the sets of an earlier release into the indexes, once (idempotent: replicas
        doing it at once add the same members)."""
        if self._indexed or await self._r.exists(INDEXED):
            self._indexed = True
            return
        accounts = [_text(m) for m in await self._r.smembers(ACCOUNTS)]
        for start in range(0, len(accounts), 500):
            async with self._r.pipeline(transaction=False) as pipe:
                for account in accounts[start : start + 500]:
                    pipe.smembers(ACCOUNT_KEYS + account)
                keyed = await pipe.execute()
            async with self._r.pipeline(transaction=False) as pipe:
                for account, members in zip(accounts[start : start + 500], keyed, strict=True):
                    pipe.zadd(ACCOUNTS_INDEX, {account: 0})
                    ids = {_text(m): 0 for m in members}
                    if ids:
                        pipe.zadd(ACCOUNT_KEYS_INDEX + account, ids)
                        pipe.zadd(KEYS_INDEX, ids)
                await pipe.execute()
        await self._r.set(INDEXED, b"1")
        self._indexed = True

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
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.zadd(ACCOUNT_KEYS_INDEX + key.account, {key.id: 0})
            pipe.zadd(KEYS_INDEX, {key.id: 0})
            pipe.sadd(ACCOUNT_KEYS + key.account, key.id)
            await pipe.execute()

    async def get_key(self, key_id: str) -> KeyRecord | None:
        """Fetch one key."""
        raw = await self._r.get(KEY + key_id)
        return KeyRecord.from_json(orjson.loads(raw)) if raw else None

    async def put_key(self, key: KeyRecord) -> None:
        """Replace an existing key."""
        await self._r.set(KEY + key.id, orjson.dumps(key.to_json()))

    async def list_keys(
        self, account_id: str | None, after: str | None = None, limit: int = PAGE
    ) -> list[KeyRecord]:
        """Up to `limit` keys (of one account, or of all) in id order, after the id `after`."""
        index = KEYS_INDEX if account_id is None else ACCOUNT_KEYS_INDEX + account_id
        ids = await self._page(index, after, limit)
        if not ids:
            return []
        raws = await self._values([KEY + i for i in ids])
        return [KeyRecord.from_json(orjson.loads(r)) for r in raws if r]

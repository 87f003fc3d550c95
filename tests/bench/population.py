"""Many keys and accounts in the store, each made as the admin API makes it.

Key `i` is an invoke key of its own account, bound to that account's one branch, with the
bench's per-key request quota: per key, an account, a branch and a key record, as
`POST /accounts`, `POST /accounts/{id}/branches`, `POST /keys` and `PUT /keys/{id}/quota` leave
them. On Redis they are written straight into redis-server by pipelines, in the store's own
key format (edge/store/redis_identity.py: the records, the listing indexes and the older sets);
the audit entries those admin calls would add are not written (nothing on a call's path reads
them). memory:// has no bulk path, its records living inside the gateway's process: there each
key is made through the admin API, four calls per key, which bounds how many a run can make.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import redis.asyncio

from edge.store.records import Account, Branch, KeyRecord
from edge.store.redis_identity import (
    ACCOUNT,
    ACCOUNT_KEYS,
    ACCOUNT_KEYS_INDEX,
    ACCOUNTS,
    ACCOUNTS_INDEX,
    BRANCHES,
    KEY,
    KEYS_INDEX,
)
from policies.credentials import KEY_PREFIX, SCOPE_INVOKE, hash_key
from policies.quota import validate_quota
from tests.bench.stack import BRANCH, KEY_RPM, Gateway
from tests.support.gateway import ADMIN_TOKEN, HMAC_SECRET

QUOTA = {"requests_per_minute": KEY_RPM}
BATCH = 5000  # keys per Redis pipeline: three commands each, plus four for the batch


def key_id(i: int) -> str:
    """Key `i`'s public id: 16 hex characters, like those `new_api_key` draws."""
    return f"be{i:014x}"


def account_id(i: int) -> str:
    """Key `i`'s account."""
    return f"acct_s{i:07d}"


Progress = Callable[[int], None]  # called with how many keys exist so far


@dataclass
class Keys:
    """The keys made in one store so far, and the secret each is presented with."""

    store: str
    salt: str
    made: int = 0
    issued: dict[int, str] = field(default_factory=dict)  # secrets the admin API returned

    def secret(self, i: int) -> str:
        """The whole key of key `i`: shown by the admin API, or derived from the run's salt
        (keys written to Redis directly), so that a million need not be kept."""
        found = self.issued.get(i)
        if found is not None:
            return found
        token = hashlib.blake2b(f"{self.salt}:{i}".encode(), digest_size=24).hexdigest()
        return f"{KEY_PREFIX}{key_id(i)}_{token}"


def _templates() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The JSON forms of an account, a branch and a key (their ids filled in per key)."""
    account = Account(id="", plan="default").to_json()
    branch = Branch(id=BRANCH, account="", parent=None).to_json()
    key = KeyRecord(
        id="",
        account="",
        hash="",
        scopes=[SCOPE_INVOKE],
        branch=BRANCH,
        quota=validate_quota(QUOTA),
    ).to_json()
    return account, branch, key


async def fill_redis(url: str, keys: Keys, upto: int, progress: Progress) -> None:
    """Write keys `keys.made .. upto-1` (with their accounts and branches) into Redis."""
    account, branch, key = _templates()
    secret = HMAC_SECRET.encode()
    client = redis.asyncio.Redis.from_url(url)
    try:
        for lo in range(keys.made, upto, BATCH):
            hi = min(upto, lo + BATCH)
            now = time.time()
            pipe = client.pipeline(transaction=False)
            accounts: dict[str, float] = {}
            ids: dict[str, float] = {}
            values: dict[str, bytes] = {}  # the account and key records, set by one MSET
            for i in range(lo, hi):
                acct, kid = account_id(i), key_id(i)
                record = {**key, "id": kid, "account": acct, "created_at": now}
                record["hash"] = hash_key(secret, keys.secret(i))
                values[ACCOUNT + acct] = orjson.dumps({**account, "id": acct, "created_at": now})
                values[KEY + kid] = orjson.dumps(record)
                tree = orjson.dumps({**branch, "account": acct, "created_at": now})
                pipe.hset(BRANCHES + acct, BRANCH, tree)
                pipe.zadd(ACCOUNT_KEYS_INDEX + acct, {kid: 0})
                pipe.sadd(ACCOUNT_KEYS + acct, kid)
                accounts[acct] = 0
                ids[kid] = 0
            pipe.mset(values)
            pipe.zadd(ACCOUNTS_INDEX, accounts)
            pipe.sadd(ACCOUNTS, *accounts)
            pipe.zadd(KEYS_INDEX, ids)
            await pipe.execute()
            keys.made = hi
            progress(hi)
    finally:
        await client.aclose()


async def fill_admin(gateway: Gateway, keys: Keys, upto: int, progress: Progress) -> None:
    """Make keys `keys.made .. upto-1` through the admin API, a few at a time."""
    todo: Iterator[int] = iter(range(keys.made, upto))
    every = max(1, (upto - keys.made) // 5)
    done = [keys.made]
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    base = f"{gateway.url}/admin/v1"

    async def call(http: aiohttp.ClientSession, method: str, path: str, body: Any) -> Any:
        async with http.request(method, base + path, json=body) as resp:
            answer = await resp.json(content_type=None)
            if resp.status not in (200, 201):
                raise RuntimeError(f"{method} {path}: {resp.status} {answer}")
            return answer

    async def worker(http: aiohttp.ClientSession) -> None:
        for i in todo:  # one iterator shared by the workers: each key is made once
            acct = account_id(i)
            await call(http, "POST", "/accounts", {"id": acct})
            await call(http, "POST", f"/accounts/{acct}/branches", {"id": BRANCH, "parent": None})
            made = await call(http, "POST", "/keys", {"account": acct, "branch": BRANCH})
            await call(http, "PUT", f"/keys/{made['id']}/quota", QUOTA)
            keys.issued[i] = str(made["key"])
            done[0] += 1
            if done[0] % every == 0:
                progress(done[0])

    async with aiohttp.ClientSession(headers=headers) as http, asyncio.TaskGroup() as group:
        for _ in range(6):
            group.create_task(worker(http))
    keys.made = upto
    progress(upto)

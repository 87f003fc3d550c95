"""The identity and usage stores behave the same on memory:// and redis://."""

from __future__ import annotations

import time

import pytest

from edge.store import open_store
from edge.store.base import AlreadyExists
from edge.store.quota import Hold, Slot, reservation_key
from edge.store.records import Account, Branch, KeyRecord
from edge.store.usage import UsageRecord, day_of

pytestmark = pytest.mark.redis_modes


@pytest.fixture
async def store(store_url):
    async with open_store(store_url, redis_timeout=1.0) as opened:
        yield opened


async def test_accounts(store) -> None:
    await store.identity.create_account(Account(id="a1", plan="pro"))
    with pytest.raises(AlreadyExists):
        await store.identity.create_account(Account(id="a1"))
    account = await store.identity.get_account("a1")
    assert account is not None and account.plan == "pro" and not account.blocked
    account.blocked = True
    await store.identity.put_account(account)
    again = await store.identity.get_account("a1")
    assert again is not None and again.blocked
    assert [a.id for a in await store.identity.list_accounts()] == ["a1"]
    assert await store.identity.get_account("nope") is None


async def test_records_are_copies(store) -> None:
    await store.identity.create_account(Account(id="a1"))
    account = await store.identity.get_account("a1")
    assert account is not None
    account.blocked = True  # not saved
    fresh = await store.identity.get_account("a1")
    assert fresh is not None and not fresh.blocked


async def test_branches(store) -> None:
    await store.identity.create_branch(Branch(id="br-root", account="a1"))
    await store.identity.create_branch(Branch(id="br-kid", account="a1", parent="br-root"))
    with pytest.raises(AlreadyExists):
        await store.identity.create_branch(Branch(id="br-kid", account="a1"))
    tree = await store.identity.branches("a1")
    assert {b: tree[b].parent for b in tree} == {"br-root": None, "br-kid": "br-root"}
    assert await store.identity.branches("a2") == {}
    await store.identity.delete_branch("a1", "br-kid")
    assert set(await store.identity.branches("a1")) == {"br-root"}


async def test_keys(store) -> None:
    key = KeyRecord(id="k1", account="a1", hash="h" * 64, scopes=["ai_gateway:invoke"])
    await store.identity.create_key(key)
    await store.identity.create_key(KeyRecord(id="k2", account="a2", hash="g" * 64, scopes=[]))
    with pytest.raises(AlreadyExists):
        await store.identity.create_key(key)
    got = await store.identity.get_key("k1")
    assert got is not None and got.hash == "h" * 64 and not got.revoked
    assert "hash" not in got.public()
    assert [k.id for k in await store.identity.list_keys("a1")] == ["k1"]
    assert {k.id for k in await store.identity.list_keys(None)} == {"k1", "k2"}


async def test_listings_page_in_id_order_from_a_cursor(store) -> None:
    ids = [f"acct-{n:03d}" for n in range(25)]
    for account in reversed(ids):
        await store.identity.create_account(Account(id=account))
        await store.identity.create_key(
            KeyRecord(id=f"key-{account}", account="shared", hash="h" * 64, scopes=[])
        )
    seen: list[str] = []
    after = None
    while True:
        page = await store.identity.list_accounts(after=after, limit=7)
        if not page:
            break
        seen += [a.id for a in page]
        after = page[-1].id
    assert seen == ids  # every account once, in order, across 4 pages
    keys = await store.identity.list_keys("shared", after="key-acct-020", limit=100)
    assert [k.id for k in keys] == [f"key-acct-{n:03d}" for n in range(21, 25)]
    everything = await store.identity.list_keys(None, limit=10)
    assert [k.id for k in everything] == [f"key-acct-{n:03d}" for n in range(10)]


async def test_indexes_are_built_from_an_earlier_releases_sets(redis_server) -> None:
    """Accounts and keys written by a release that kept plain sets (and listed keys by a scan)
    are listed once this release builds its indexes."""
    redis_server.command("FLUSHALL")
    for account in ("old-a", "old-b"):
        redis_server.command("SET", f"edge:acct:{account}", f'{{"id": "{account}"}}')
        redis_server.command("SADD", "edge:accts", account)
    record = '{"id": "oldkey", "account": "old-a", "hash": "h", "scopes": []}'
    redis_server.command("SET", "edge:key:oldkey", record)
    redis_server.command("SADD", "edge:acctkeys:old-a", "oldkey")
    async with open_store(redis_server.url, redis_timeout=1.0) as opened:
        assert [a.id for a in await opened.identity.list_accounts()] == ["old-a", "old-b"]
        assert [k.id for k in await opened.identity.list_keys("old-a")] == ["oldkey"]
        assert [k.id for k in await opened.identity.list_keys(None)] == ["oldkey"]


async def test_usage_counters(store) -> None:
    # Usage is written by a settle (whether or not its reservation is still open).
    first = UsageRecord(("key:k1", "account:a1"), (("requests", 1), ("input_tokens", 5)), day_of(0))
    second = UsageRecord(
        ("key:k1",), (("requests", 1), ("output_tokens", 7)), day_of(10), account="a1"
    )
    for n, record in enumerate((first, second)):
        await store.quota.settle(reservation_key("a1", f"r{n}"), f"r{n}", [], [], record)
    days = await store.usage.days("key:k1", ["1970-01-01", "1970-01-02"], account="a1")
    assert days["1970-01-01"]["requests"] == 2
    assert days["1970-01-01"]["input_tokens"] == 5
    assert days["1970-01-01"]["output_tokens"] == 7
    assert days["1970-01-02"]["requests"] == 0
    account = await store.usage.days("account:a1", ["1970-01-01"])
    assert account["1970-01-01"]["requests"] == 1


async def test_a_retried_settlement_counts_the_call_once(store) -> None:
    # A settle that timed out may have run after all: running it again changes nothing.
    marker = reservation_key("a1", "r9")
    hold = Hold(key="c:{a1}:tokens", amount=100, limit=None, expires_at=time.time() + 60)
    await store.quota.reserve(marker, "r9", [hold], [Slot("s:{a1}", None)], 30)
    assert await store.quota.open_reservations("a1") == 1
    record = UsageRecord(
        ("key:k9",), (("requests", 1), ("input_tokens", 30)), day_of(0), account="a1"
    )
    deltas = [("c:{a1}:tokens", 30 - 100)]
    assert await store.quota.settle(marker, "r9", deltas, ["s:{a1}"], record)
    assert not await store.quota.settle(marker, "r9", deltas, ["s:{a1}"], record)
    days = await store.usage.days("key:k9", ["1970-01-01"], account="a1")
    assert days["1970-01-01"]["requests"] == 1 and days["1970-01-01"]["input_tokens"] == 30
    assert await store.quota.read(["c:{a1}:tokens"], ["s:{a1}"]) == ([30], [0])
    assert await store.quota.open_reservations("a1") == 0
    # A call whose reservation expired unsettled is still recorded, once: it happened.
    gone = reservation_key("a1", "r10")
    assert not await store.quota.settle(gone, "r10", [], [], record)
    assert not await store.quota.settle(gone, "r10", [], [], record)
    assert (await store.usage.days("key:k9", ["1970-01-01"], "a1"))["1970-01-01"]["requests"] == 2


async def test_usage_detail_per_key_and_model(store) -> None:
    day = day_of(0)
    counts = (("requests", 1), ("input_tokens", 5), ("cost_micros", 0))
    for n, prefix in enumerate(("k1\tgpt-5-4", "k1\tgpt-5-4", "-\tlocal/echo")):
        record = UsageRecord(("account:a1",), counts, day, detail=("a1", prefix))
        await store.quota.settle(reservation_key("a1", f"d{n}"), f"d{n}", [], [], record)
    found = await store.usage.detail("a1", [day, "1970-01-02"])
    assert found[day] == {
        "k1\tgpt-5-4\trequests": 2,
        "k1\tgpt-5-4\tinput_tokens": 10,
        "-\tlocal/echo\trequests": 1,
        "-\tlocal/echo\tinput_tokens": 5,
    }
    assert found["1970-01-02"] == {}
    assert (await store.usage.days("account:a1", [day]))[day]["requests"] == 3


async def test_a_keys_usage_is_found_by_its_id_alone(store) -> None:
    # The admin API asks by key id: the store finds the key's account (whose slot it is in).
    await store.identity.create_account(Account(id="a1"))
    await store.identity.create_key(KeyRecord(id="k1", account="a1", hash="h" * 64, scopes=[]))
    record = UsageRecord(("key:k1", "account:a1"), (("requests", 1),), day_of(0), account="a1")
    await store.quota.settle(reservation_key("a1", "r1"), "r1", [], [], record)
    assert (await store.usage.days("key:k1", ["1970-01-01"]))["1970-01-01"]["requests"] == 1


async def test_usage_an_earlier_release_recorded_is_still_read(redis_server) -> None:
    # Earlier releases named the usage hashes without the account's hash tag: after an upgrade
    # their days are added in until their retention ends.
    redis_server.command("FLUSHALL")
    redis_server.command("HSET", "edge:usage:key:k1:1970-01-01", "requests", "4")
    redis_server.command("HSET", "edge:usage:detail:a1:1970-01-01", "k1\tm\trequests", "4")
    async with open_store(redis_server.url, redis_timeout=1.0) as opened:
        record = UsageRecord(("key:k1",), (("requests", 1),), day_of(0), ("a1", "k1\tm"))
        await opened.quota.settle(reservation_key("a1", "r1"), "r1", [], [], record)
        days = await opened.usage.days("key:k1", ["1970-01-01"], account="a1")
        assert days["1970-01-01"]["requests"] == 5
        found = await opened.usage.detail("a1", ["1970-01-01"])
        assert found["1970-01-01"] == {"k1\tm\trequests": 5}


async def test_usage_hashes_keep_the_retention_past_their_day(redis_server) -> None:
    # Each hash is given its expiry once, by the call that creates it: the end of the day plus
    # the retention, never sooner than a renewal by the day's last call would have put it.
    redis_server.command("FLUSHALL")
    day = 86400
    record = UsageRecord(
        ("key:k1", "account:a1"),
        (("requests", 1), ("input_tokens", 5)),
        day_of(time.time()),
        ("a1", "k1\tm"),
        retention_s=3 * day,
    )
    async with open_store(redis_server.url, redis_timeout=1.0) as opened:
        await opened.quota.settle(reservation_key("a1", "r1"), "r1", [], [], record)
        end = (int(time.time()) // day + 1) * day + 3 * day
        for key in record.keys:
            left = int(redis_server.command("TTL", key)[1:].split(b"\r\n")[0])
            assert 3 * day <= left and abs(time.time() + left - end) <= 2
        redis_server.command("CONFIG", "RESETSTAT")
        await opened.quota.settle(reservation_key("a1", "r2"), "r2", [], [], record)
        stats = redis_server.command("INFO", "commandstats")
        assert b"cmdstat_expire" not in stats and b"cmdstat_get:" not in stats
        found = await opened.usage.detail("a1", [record.day])
    assert found[record.day] == {"k1\tm\trequests": 2, "k1\tm\tinput_tokens": 10}

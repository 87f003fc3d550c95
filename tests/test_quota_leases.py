"""Request-rate leases on a real Redis: two replicas' slices and the requests decided one by one
by the reserve script never sum past a limit; what a slice did not spend comes back, so the
tenant still gets its whole limit; a call refused after spending gives its request back."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import AsyncIterator

import pytest

from edge.quota.backlog import Backlog
from edge.quota.demand import RateCheck
from edge.quota.leases import Leases
from edge.store import Store, open_store
from edge.store.quota import Window, reservation_key, window_key
from edge.store.quota_redis import moving_key
from policies.leases import LeasePolicy
from policies.quota import RequestRule, Strategy
from tests.support.clock import Deadline
from tests.support.redis_server import RedisServer

LIMIT = 1000
STRATEGIES: list[Strategy] = ["moving-window", "sliding-window-counter"]


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[Store]:
    redis_server.command("FLUSHALL")
    async with open_store(redis_server.url, redis_timeout=1.0) as opened:
        yield opened


def _check(strategy: Strategy, limit: int = LIMIT) -> RateCheck:
    window = Window(window_key("acct", "key:k1", "requests_per_minute"), strategy, limit, "minute")
    return RateCheck("key", RequestRule("requests_per_minute", "minute", limit), window)


class Replica:
    """One replica's admission of request-rate windows: its leases first, else the script."""

    def __init__(self, store: Store, policy: LeasePolicy) -> None:
        assert store.leases is not None
        self.store = store
        self.backlog = Backlog()
        self.leases = Leases(store.leases, self.backlog, policy)
        self.by_lease = 0
        self.by_script = 0

    async def call(self, check: RateCheck) -> bool:
        _, spent = self.leases.spend([check], time.time())
        if spent:
            self.by_lease += 1
            return True
        member = secrets.token_hex(8)
        marker = reservation_key("acct", member)
        outcome = await self.store.quota.reserve(marker, member, [], [], 30, [check.window])
        self.by_script += outcome.admitted
        return outcome.admitted

    async def close(self) -> None:
        await self.leases.close()
        await self.backlog.wait(5)


async def _admit_all(replicas: list[Replica], check: RateCheck, calls: int) -> int:
    """`calls` calls spread at random over the replicas, 20 at a time."""
    rng = random.Random(11)
    admitted = 0

    async def one() -> None:
        nonlocal admitted
        ok = await rng.choice(replicas).call(check)
        admitted += ok

    for start in range(0, calls, 20):
        await asyncio.gather(*(one() for _ in range(min(20, calls - start))))
    return admitted


@pytest.mark.parametrize("calls", [3 * LIMIT, LIMIT // 2])
@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_slices_and_single_requests_never_pass_the_limit(
    store: Store, strategy: Strategy, calls: int
) -> None:
    check = _check(strategy)
    replicas = [Replica(store, LeasePolicy()), Replica(store, LeasePolicy())]
    admitted = await _admit_all(replicas, check, calls)
    # Past the limit, slices still out when the calls end may leave a few unspent (they come
    # back below); short of it, every call fits.
    assert admitted <= LIMIT if calls > LIMIT else admitted == calls
    # Both replicas spent slices (the test would prove nothing otherwise).
    assert all(r.by_lease > 0 for r in replicas), [(r.by_lease, r.by_script) for r in replicas]
    held = (await store.quota.read_windows([check.window]))[0]
    print(f"\n{strategy}: {admitted} admitted, {LIMIT - held.remaining} counted", end=" ")
    if calls < LIMIT:
        assert held.remaining < LIMIT - admitted  # slices are out, holding what they did not spend
    for replica in replicas:
        await replica.close()
    # What the slices did not spend is back: the window holds exactly the admitted requests,
    # and one more request each fits until the limit, and not one past it.
    state = (await store.quota.read_windows([check.window]))[0]
    assert state.remaining == LIMIT - admitted
    more = Replica(store, LeasePolicy(hot_calls=LIMIT + 1))  # the script decides each call
    extra = [await more.call(check) for _ in range(LIMIT - admitted + 5)]
    assert extra == [True] * (LIMIT - admitted) + [False] * 5


async def test_spent_requests_count_at_their_own_time(store: Store) -> None:
    check = _check("moving-window")
    replica = Replica(store, LeasePolicy())
    deadline = Deadline(10)
    while replica.by_lease < 30:
        deadline.check("no slice was ever taken")
        await replica.call(check)
        await asyncio.sleep(0)
    redis = store.redis
    assert redis is not None
    future = await redis.zcount(moving_key(check.window), f"({time.time() * 1000}", "+inf")
    assert future > 0  # the slice's unspent members stand at its end, ahead of now
    await replica.close()
    members = await redis.zrange(moving_key(check.window), 0, -1, withscores=True)
    now_ms = time.time() * 1000
    assert len(members) == replica.by_lease + replica.by_script
    assert all(score <= now_ms for _, score in members)  # each at the time it was spent


async def test_a_call_refused_after_spending_gives_its_request_back(store: Store) -> None:
    check = _check("moving-window")
    replica = Replica(store, LeasePolicy())
    deadline = Deadline(10)
    while True:
        deadline.check("no slice was ever taken")
        _, spent = replica.leases.spend([check], time.time())
        if spent:
            break
        await replica.call(check)
        await asyncio.sleep(0)
    before = replica.by_script
    replica.leases.unspend(spent)
    await replica.close()
    state = (await store.quota.read_windows([check.window]))[0]
    assert state.remaining == LIMIT - before


async def test_small_limits_are_never_leased(store: Store) -> None:
    check = _check("moving-window", limit=200)
    replica = Replica(store, LeasePolicy())
    results = [await replica.call(check) for _ in range(250)]
    assert replica.by_lease == 0
    assert results == [True] * 200 + [False] * 50
    await replica.close()

"""The reserve and settle scripts, and their in-memory twin, side by side on a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from edge.store import open_store
from edge.store.quota import Hold, QuotaStore, ReserveResult, Slot, Window, reservation_key
from edge.store.quota_redis import RedisQuota
from policies.quota import Strategy
from tests.support.clock import Deadline
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis_modes


@pytest.fixture
async def quota(store_url: str) -> AsyncIterator[QuotaStore]:
    async with open_store(store_url, redis_timeout=1.0) as store:
        yield store.quota


def _hold(key: str, amount: int, limit: int | None) -> Hold:
    return Hold(key=key, amount=amount, limit=limit, expires_at=time.time() + 60)


async def test_all_or_nothing(quota: QuotaStore) -> None:
    holds = [_hold("c:{a}:tokens", 60, 100), _hold("c:{a}:cost", 5, 10)]
    slots = [Slot("s:{a}", 5)]
    first = await quota.reserve(reservation_key("a", "r1"), "r1", holds, slots, 30)
    assert first.admitted and first.values == [0, 0] and first.in_flight == [0]
    second = await quota.reserve(reservation_key("a", "r2"), "r2", holds, slots, 30)
    assert not second.admitted and second.denied == 0 and second.values[0] == 60
    # Nothing of the refused call was counted anywhere.
    values, counts = await quota.read(["c:{a}:tokens", "c:{a}:cost"], ["s:{a}"])
    assert values == [60, 5] and counts == [1]


async def test_settle_charges_the_difference_once(quota: QuotaStore) -> None:
    holds = [_hold("c:{a}:tokens", 100, 1000)]
    await quota.reserve(reservation_key("a", "r1"), "r1", holds, [Slot("s:{a}", None)], 30)
    deltas = [("c:{a}:tokens", 40 - 100)]
    assert await quota.settle(reservation_key("a", "r1"), "r1", deltas, ["s:{a}"])
    assert not await quota.settle(reservation_key("a", "r1"), "r1", deltas, ["s:{a}"])
    assert await quota.read(["c:{a}:tokens"], ["s:{a}"]) == ([40], [0])
    assert await quota.open_reservations("a") == 0


async def test_concurrency_slot_refuses_at_the_limit(quota: QuotaStore) -> None:
    slot = [Slot("s:{a}", 2)]
    results = [
        await quota.reserve(reservation_key("a", f"r{i}"), f"r{i}", [], slot, 30) for i in range(3)
    ]
    assert [r.admitted for r in results] == [True, True, False]
    assert results[2].denied == 0
    await quota.settle(reservation_key("a", "r0"), "r0", [], ["s:{a}"])
    assert (await quota.reserve(reservation_key("a", "r3"), "r3", [], slot, 30)).admitted


async def test_unsettled_reservation_expires(quota: QuotaStore) -> None:
    holds = [_hold("c:{a}:tokens", 10, 100)]
    slot = [Slot("s:{a}", 1)]
    assert (await quota.reserve(reservation_key("a", "r1"), "r1", holds, slot, 0.2)).admitted
    assert await quota.open_reservations("a") == 1
    assert not (await quota.reserve(reservation_key("a", "r2"), "r2", holds, slot, 0.2)).admitted
    deadline = Deadline(10)
    while await quota.open_reservations("a"):
        deadline.check("the reservation never expired")
        await asyncio.sleep(0.05)
    # Its slot is free again; the estimate it held stays counted (it may have been used).
    assert (await quota.reserve(reservation_key("a", "r2"), "r2", holds, slot, 0.2)).admitted
    assert (await quota.read(["c:{a}:tokens"], []))[0] == [20]
    # A late settle of the expired reservation changes nothing.
    assert not await quota.settle(reservation_key("a", "r1"), "r1", [("c:{a}:tokens", -10)], [])


async def test_concurrent_reservations_never_exceed_the_limit(quota: QuotaStore) -> None:
    holds = [_hold("c:{a}:tokens", 7, 100)]

    async def one(i: int) -> bool:
        found = await quota.reserve(reservation_key("a", f"r{i}"), f"r{i}", holds, [], 30)
        return found.admitted

    admitted = await asyncio.gather(*(one(i) for i in range(40)))
    assert sum(admitted) == 100 // 7
    assert (await quota.read(["c:{a}:tokens"], []))[0] == [7 * (100 // 7)]


def _window(limit: int, strategy: Strategy = "moving-window", field: str = "rpm") -> Window:
    return Window(f"w:{{a}}:{field}", strategy, limit, "minute")


async def _reserve(
    quota: QuotaStore, n: int, windows: list[Window], holds: list[Hold] | None = None
) -> ReserveResult:
    marker = reservation_key("a", f"r{n}")
    return await quota.reserve(marker, f"r{n}", holds or [], [Slot("s:{a}", None)], 30, windows)


@pytest.mark.parametrize("strategy", ["moving-window", "sliding-window-counter"])
async def test_request_windows_admit_up_to_the_limit(quota: QuotaStore, strategy: Strategy) -> None:
    window = _window(3, strategy)
    results = [await _reserve(quota, n, [window]) for n in range(4)]
    assert [r.admitted for r in results] == [True, True, True, False]
    assert [r.windows[0].remaining for r in results[:3]] == [2, 1, 0]
    refused = results[3].windows[0]
    assert not refused.allowed and refused.remaining == 0
    # Exact to the window: a moving window frees up when its oldest request is a minute old, a
    # full sliding window counter once the current minute ends.
    left = 60 - time.time() % 60
    expected = 60.0 if strategy == "moving-window" else left
    assert abs(refused.reset - expected) < 1.0
    assert (await quota.read_windows([window]))[0].remaining == 0
    # The refused call counted nowhere: its slot was not joined either.
    assert (await quota.read([], ["s:{a}"]))[1] == [3]


async def test_a_raised_limit_has_room_at_once(quota: QuotaStore) -> None:
    for n in range(2):
        assert (await _reserve(quota, n, [_window(2)])).admitted
    assert not (await _reserve(quota, 2, [_window(2)])).admitted
    raised = await _reserve(quota, 3, [_window(5)])
    assert raised.admitted and raised.windows[0].remaining == 2


async def test_a_lowered_moving_window_waits_for_its_limit_th_newest_request(
    quota: QuotaStore,
) -> None:
    """Past a lowered limit the window holds more requests than the limit: one more fits once
    the limit-th newest leaves it (the second of three here, for a limit of 2), not the oldest."""
    spans = []
    for n in range(3):
        before = time.time()
        assert (await _reserve(quota, n, [_window(3)])).admitted
        spans.append((before, time.time()))
        await asyncio.sleep(0.3)
    before = time.time()
    refused = (await _reserve(quota, 3, [_window(2)])).windows[0]
    after = time.time()
    assert not refused.allowed
    second_from, second_to = spans[1]
    assert 60 - (after - second_from) - 0.01 <= refused.reset <= 60 - (before - second_to) + 0.01


async def test_every_limit_or_none_is_counted(quota: QuotaStore) -> None:
    roomy, full = _window(10, field="rpm"), _window(1, field="rph")
    assert (await _reserve(quota, 0, [full])).admitted
    # A refusing window: the roomy window, the counter and the slot stay as they were.
    holds = [_hold("c:{a}:tokens", 5, 100)]
    refused = await _reserve(quota, 1, [roomy, full], holds)
    assert not refused.admitted and refused.denied is None
    assert [w.allowed for w in refused.windows] == [True, False]
    assert (await quota.read_windows([roomy]))[0].remaining == 10
    assert await quota.read(["c:{a}:tokens"], ["s:{a}"]) == ([0], [1])
    # A refusing counter: no window counts the call.
    refused = await _reserve(quota, 2, [roomy], [_hold("c:{a}:tokens", 500, 100)])
    assert not refused.admitted and refused.denied == 0
    assert (await quota.read_windows([roomy]))[0].remaining == 10


async def test_scripts_load_again_after_redis_forgets_them(redis_server: RedisServer) -> None:
    redis_server.command("FLUSHALL")
    redis = Redis.from_url(redis_server.url)
    try:
        quota = RedisQuota(redis)
        assert (await _reserve(quota, 0, [_window(5)])).admitted
        await redis.script_flush()  # as a restarted Redis would have it
        assert (await _reserve(quota, 1, [_window(5)])).admitted
        assert await quota.settle(reservation_key("a", "r1"), "r1", [], ["s:{a}"])
    finally:
        await redis.aclose()


async def test_settlements_due_together_each_settle_once(redis_server: RedisServer) -> None:
    """Settlements that come due in one loop iteration share a pipeline, each still its own
    atomic script; one Redis has forgotten is loaded again for the calls that need it."""
    redis_server.command("FLUSHALL")
    redis = Redis.from_url(redis_server.url)
    try:
        quota = RedisQuota(redis)
        for n in range(20):
            assert (await _reserve(quota, n, [], [_hold("c:{a}:tokens", 10, 1000)])).admitted
        await redis.script_flush()

        async def settle(n: int) -> bool:
            marker = reservation_key("a", f"r{n}")
            return await quota.settle(marker, f"r{n}", [("c:{a}:tokens", -4)], ["s:{a}"])

        assert await asyncio.gather(*(settle(n) for n in range(20))) == [True] * 20
        assert await asyncio.gather(*(settle(n) for n in range(20))) == [False] * 20
        assert await quota.read(["c:{a}:tokens"], ["s:{a}"]) == ([20 * 6], [0])
    finally:
        await redis.aclose()


async def test_a_reservation_released_before_it_arrives_counts_nothing(quota: QuotaStore) -> None:
    # Its caller left while the reserve was on its way and the release got there first.
    marker = reservation_key("a", "r1")
    assert not await quota.settle(marker, "r1", [("c:{a}:tokens", -50)], ["s:{a}"])
    hold = [_hold("c:{a}:tokens", 50, 100)]
    late = await quota.reserve(marker, "r1", hold, [Slot("s:{a}", 5)], 30)
    assert not late.admitted
    assert await quota.read(["c:{a}:tokens"], ["s:{a}"]) == ([0], [0])
    assert await quota.open_reservations("a") == 0

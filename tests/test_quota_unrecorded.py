"""Leased calls on a real Redis: a call admitted from a lease, with no limit left for the store to
check, costs the store its settlement only when it ends within a second (no reservation record
is written for it), and a call still running after that is recorded, so the in-flight figure
shows it until it ends; at shutdown, every call still running is recorded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from edge.quota.backlog import Backlog
from edge.quota.demand import Demand
from edge.quota.reservation import Reservation
from edge.quota.unrecorded import RECORD_AFTER, Unrecorded
from policies.quota_estimate import Estimate
from tests.support.clock import Deadline
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, Tenant, gateway_env, settings_for, start_live, stop_live
from tests.support.redis_server import RedisServer
from tests.test_quota_support import chat, chat_body, open_stream

RPM = 100_000  # large enough to be leased (policies/leases.py)
WARM = 30  # calls that make the window hot, so that a slice is held
CALLS = 60


@pytest.fixture
async def live(redis_server: RedisServer, fake: FakeUpstream) -> AsyncIterator[Live]:
    redis_server.command("FLUSHALL")
    gateway = await start_live(settings_for(gateway_env(redis_server.url, fake.url)))
    yield gateway
    await stop_live(gateway)


async def _settled(live: Live, key_id: str, requests: int) -> None:
    deadline = Deadline(10)
    while True:
        _, usage = await live.admin("GET", f"/keys/{key_id}/usage")
        if usage["today"]["requests"] >= requests and usage["in_flight"] == 0:
            return
        deadline.check(f"the calls were never settled: {usage}")
        await asyncio.sleep(0.02)


async def _hot_tenant(live: Live) -> Tenant:
    """A key whose request-rate window this replica has seen called often enough to lease."""
    tenant = await live.tenant(quota={"requests_per_minute": RPM})
    assert live.http is not None
    for _ in range(WARM):
        status, _, body = await chat(live.http, live.url, tenant.key, chat_body())
        assert status == 200, body
    await _settled(live, tenant.key_id, WARM)
    return tenant


async def test_short_leased_calls_cost_the_store_their_settlement_only(
    live: Live, redis_server: RedisServer
) -> None:
    tenant = await _hot_tenant(live)
    assert live.http is not None
    r = aioredis.from_url(redis_server.url)
    try:
        await r.config_resetstat()
        for _ in range(CALLS):
            status, headers, body = await chat(live.http, live.url, tenant.key, chat_body())
            assert status == 200, body
            assert "RateLimit" in headers  # admitted by the request-rate limit, and reported
        await _settled(live, tenant.key_id, WARM + CALLS)
        stats = await r.info("commandstats")
    finally:
        await r.aclose()
    scripts = stats["cmdstat_evalsha"]["calls"]
    in_flight_adds = stats.get("cmdstat_zadd", {}).get("calls", 0)
    # One settlement each; a recorded call would add its reservation's script and in-flight
    # entries. A few scripts more are slices taken and given back, or a call the store decided.
    assert CALLS <= scripts <= CALLS + CALLS // 4, stats
    assert in_flight_adds <= CALLS // 4, stats


async def test_a_leased_call_still_running_is_recorded_and_shown_in_flight(
    live: Live, fake: FakeUpstream
) -> None:
    tenant = await _hot_tenant(live)
    assert live.http is not None
    fake.push(Scenario(endless=True, delay_chunks=0.01))
    async with aiohttp.ClientSession() as http:
        resp = await open_stream(http, live.url, tenant.key)
        deadline = Deadline(RECORD_AFTER + 10)
        while (await live.admin("GET", f"/keys/{tenant.key_id}/usage"))[1]["in_flight"] != 1:
            deadline.check("a call running past RECORD_AFTER was never shown in flight")
            await asyncio.sleep(0.05)
        resp.close()
    await _settled(live, tenant.key_id, WARM + 1)


async def test_only_calls_still_running_are_recorded_and_shutdown_records_the_rest() -> None:
    written: list[str] = []

    async def write(demand: Demand, reservation: Reservation) -> None:
        written.append(reservation.id)

    backlog = Backlog()
    unrecorded = Unrecorded(write, backlog, after=0.05)
    calls = [Reservation(id=f"r{i}", account="acct", key_id="k", model=None) for i in range(4)]
    demand = Demand(Estimate(0, 0, 0))
    for call in calls[:3]:
        unrecorded.add(demand, call)
    unrecorded.ended(calls[0])  # settled within the delay: never written
    deadline = Deadline(10)
    while len(written) < 2:
        deadline.check(f"the running calls were never recorded: {written}")
        await asyncio.sleep(0.01)
    unrecorded.ended(calls[1])  # settled after it was written: nothing more to do here
    unrecorded.add(demand, calls[3])
    unrecorded.close()  # shutdown: what still runs is recorded now, not after the delay
    await backlog.wait(10)
    assert written == ["r1", "r2", "r3"]
    assert len(unrecorded) == 0

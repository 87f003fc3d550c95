"""With Redis gone, each policy as configured: rates on this replica's share, budgets failing
open when so configured, every fallback decision counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from edge.appkeys import QUOTA
from tests.support.clock import Deadline, Stopwatch
from tests.support.fault_proxy import FaultProxy
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.redis_server import RedisServer
from tests.test_quota_support import chat


@pytest.fixture
async def doomed() -> AsyncIterator[tuple[Live, RedisServer]]:
    server = RedisServer().start()
    env = gateway_env(server.url, None, EDGE_EXPECTED_REPLICAS="2", EDGE_QUOTA_FAIL_OPEN="true")
    live = await start_live(settings_for(env))
    try:
        yield live, server
    finally:
        await stop_live(live)
        server.stop()


async def test_fail_open_budgets_and_local_rate_share(doomed: tuple[Live, RedisServer]) -> None:
    live, server = doomed
    assert live.http is not None and live.app is not None
    rate = await live.tenant(quota={"requests_per_minute": 4})
    budget = await live.tenant(quota={"tokens_per_day": 1_000_000})
    for tenant in (rate, budget):  # cache both keys, as a serving replica would have them
        assert (await chat(live.http, live.url, tenant.key))[0] == 200
    server.kill()
    statuses = [(await chat(live.http, live.url, rate.key))[0] for _ in range(3)]
    # Half of 4 per minute on each of 2 expected replicas: 2 here, then refused.
    assert statuses == [200, 200, 429]
    assert (await chat(live.http, live.url, budget.key))[0] == 200
    counts = live.app[QUOTA].fallback_counts()
    assert counts["rate_local"] == 3
    assert counts["budget_open"] == 1
    assert counts["budget_closed"] == 0


async def blackholed_redis(redis_server: RedisServer) -> list[float]:
    """Redis that accepts bytes but never answers: request rates are decided locally, budgets
    refused, and decisions are back once Redis answers again. Returns how long each call
    during the blackhole took (figures: tests/soak/test_durations_soak.py holds them to the
    breaker's promise)."""
    redis_server.command("FLUSHALL")
    proxy = await FaultProxy("127.0.0.1", redis_server.port).start()
    url = f"redis://{proxy.url_host_port}/0"
    env = gateway_env(url, None, EDGE_EXPECTED_REPLICAS="1", EDGE_REDIS_TIMEOUT="0.1")
    live = await start_live(settings_for(env))
    try:
        assert live.http is not None and live.app is not None
        rate = await live.tenant(quota={"requests_per_minute": 1000})
        budget = await live.tenant(quota={"tokens_per_day": 1_000_000})
        for tenant in (rate, budget):
            assert (await chat(live.http, live.url, tenant.key))[0] == 200
        proxy.set("blackhole")
        timings = []
        for i in range(12):
            tenant = rate if i % 2 else budget
            took = Stopwatch()
            status = (await chat(live.http, live.url, tenant.key))[0]
            timings.append(took.elapsed())
            assert status == (200 if tenant is rate else 503)
        proxy.set("pass")
        deadline = Deadline(10)
        while (await chat(live.http, live.url, budget.key))[0] != 200:
            deadline.check("no recovery after Redis answered again")
            await asyncio.sleep(0.05)
    finally:
        proxy.set("pass")
        await stop_live(live)
        await proxy.stop()
    return timings


async def test_blackholed_redis_costs_a_timeout_then_nothing(redis_server: RedisServer) -> None:
    """The first decisions wait out the client timeout, a few timeouts in a row trip the
    breaker, and later decisions do not wait: the timings are printed here, and held to that
    in tests/soak/test_durations_soak.py."""
    timings = await blackholed_redis(redis_server)
    print("calls during the blackhole: " + ", ".join(f"{t * 1000:.0f}" for t in timings) + " ms")

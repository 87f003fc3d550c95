"""With Redis gone, each policy as configured: rates on this replica's share, budgets failing
open when so configured, every fallback decision counted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from edge.appkeys import QUOTA
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

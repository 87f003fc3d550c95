"""Settlement runs after the answer has left: the client never waits for it, and stopping the
gateway still writes every pending one before the store closes (memory:// and redis://)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

from edge.appkeys import STORE
from edge.store.usage import RedisUsage, day_of
from tests.support.gateway import gateway_env, settings_for, start_live, stop_live
from tests.test_quota_support import chat

DELAY = 0.5


class SlowSettle:
    """A quota store whose settlements take DELAY seconds longer."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.settled = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def settle(self, *args: Any, **kwargs: Any) -> bool:
        await asyncio.sleep(DELAY)
        done = bool(await self._inner.settle(*args, **kwargs))
        self.settled += 1
        return done


async def test_answer_leaves_before_settlement_and_shutdown_waits_for_it(
    store_url: str,
) -> None:
    live = await start_live(settings_for(gateway_env(store_url, None)))
    stopped = False
    try:
        assert live.http is not None and live.app is not None
        tenant = await live.tenant(quota={"tokens_per_day": 100_000})
        store = live.app[STORE]
        slow = SlowSettle(store.quota)
        store.quota = slow
        started = time.monotonic()
        status, _, _ = await chat(live.http, live.url, tenant.key)
        assert status == 200
        assert time.monotonic() - started < DELAY  # the answer did not wait
        assert slow.settled == 0
        await stop_live(live)
        stopped = True
        assert slow.settled == 1  # written before the store closed
        day = day_of(time.time())
        if store.redis is None:
            usage = store.usage
        else:
            redis = Redis.from_url(store_url)
            usage = RedisUsage(redis)
        try:
            rows = await usage.days(f"key:{tenant.key_id}", [day])
        finally:
            if store.redis is not None:
                await redis.aclose()
        assert rows[day]["requests"] == 1
    finally:
        if not stopped:
            await stop_live(live)

"""Settlement runs after the answer has left: the client never waits for it, and stopping the
gateway still writes every pending one before the store closes (memory:// and redis://)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from edge.appkeys import QUOTA, STORE
from edge.store.usage import RedisUsage, day_of
from tests.support.clock import Deadline, Stopwatch, wait_until
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import gateway_env, settings_for, start_live, stop_live
from tests.support.redis_server import RedisServer
from tests.support.streams import frames
from tests.test_quota_support import chat

DELAY = 0.5


class SlowSettle:
    """A quota store whose settlements wait until the test opens `gate`, then DELAY seconds
    more."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.gate = asyncio.Event()
        self.started = 0
        self.settled = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def settle(self, *args: Any, **kwargs: Any) -> bool:
        self.started += 1
        await self.gate.wait()
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
        # The answer arrives while its settlement cannot finish (the gate is shut): it did not
        # wait for it.
        status, _, _ = await chat(live.http, live.url, tenant.key)
        assert status == 200
        await wait_until(lambda: slow.started == 1, "the settlement never began")
        assert slow.settled == 0
        # Stopping opens the gate as it begins: the settlement still takes DELAY, and the stop
        # waits for it.
        stopping = asyncio.ensure_future(stop_live(live))
        slow.gate.set()
        await stopping
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


async def test_a_settlement_the_store_could_not_take_is_written_once_it_can(
    redis_server: RedisServer, fake: FakeUpstream
) -> None:
    """Redis holds every write for a while just as a stream ends: the settlement times out,
    is retried, and lands exactly once (the first attempt, queued by Redis, may run too)."""
    redis_server.command("FLUSHALL")
    env = gateway_env(redis_server.url, fake.url, EDGE_REDIS_TIMEOUT="0.1")
    live = await start_live(settings_for(env))
    try:
        assert live.http is not None and live.app is not None
        tenant = await live.tenant(quota={"tokens_per_day": 100_000})
        fake.push(Scenario(frames=frames("chat", 6), delay_chunks=0.1))
        body = {"model": "gpt-5-4", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        async with live.http.post(
            f"{live.url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {tenant.key}"},
        ) as resp:
            assert resp.status == 200
            await resp.content.readany()  # reserved: now hold every write for 1.5 s
            redis_server.command("CLIENT", "PAUSE", "1500", "WRITE")
            paused = Stopwatch()
            await resp.read()
        quota = live.app[QUOTA]
        # The retries end once one is written (settle_late: its first attempt had failed, as
        # Redis held every write); whatever ran before is in by then.
        await wait_until(
            lambda: quota.fallback_counts()["settle_late"] > 0, "no late settlement", 20, 0.05
        )
        landed = paused.elapsed()
        print(f"settlement landed {landed:.2f} s after Redis paused writes for 1.5 s")
        status, usage = await live.admin("GET", f"/keys/{tenant.key_id}/usage")
        assert status == 200
        used = next(r["used"] for r in usage["limits"] if r["name"] == "tokens_per_day")
        today = usage["today"]
        assert usage["in_flight"] == 0 and today["requests"] == 1, usage
        assert used == today["input_tokens"] + today["output_tokens"] > 0, usage
        assert quota.fallback_counts()["settle_lost"] == 0
    finally:
        redis_server.command("CLIENT", "UNPAUSE")
        await stop_live(live)


BUSY = """local start = redis.call('TIME')
local function ms(t) return t[1] * 1000 + t[2] / 1000 end
while ms(redis.call('TIME')) - ms(start) < tonumber(ARGV[1]) do end
return 1"""


async def test_a_client_gone_while_its_reservation_is_on_the_way_holds_nothing(
    redis_server: RedisServer,
) -> None:
    """The client leaves while its reserve script waits behind a busy Redis, which runs it
    later all the same: the reservation is released, whichever of the two runs first."""
    redis_server.command("FLUSHALL")
    env = gateway_env(redis_server.url, None, EDGE_REDIS_TIMEOUT="0.1")
    live = await start_live(settings_for(env))
    try:
        assert live.http is not None
        tenant = await live.tenant(quota={"tokens_per_day": 100_000, "max_concurrent": 3})
        headers = {"Authorization": f"Bearer {tenant.key}"}
        body = {"model": "local/echo", "messages": [{"role": "user", "content": "x"}]}
        async with live.http.post(
            f"{live.url}/v1/chat/completions", json=body, headers=headers
        ) as resp:
            assert resp.status == 200  # the key is now in the identity cache
        busy = asyncio.ensure_future(
            asyncio.to_thread(redis_server.command, "EVAL", BUSY, "0", "300")
        )
        await asyncio.sleep(0.02)
        with pytest.raises(asyncio.TimeoutError):
            async with live.http.post(
                f"{live.url}/v1/chat/completions",
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=0.04),  # well inside the 100 ms Redis timeout
            ) as resp:
                await resp.read()
        assert not busy.done()  # it left while Redis was still busy
        await busy
        deadline = Deadline(20)
        while True:
            status, usage = await live.admin("GET", f"/keys/{tenant.key_id}/usage")
            assert status == 200
            used = next(r["used"] for r in usage["limits"] if r["name"] == "tokens_per_day")
            if (
                usage["in_flight"] == 0
                and used == usage["today"]["input_tokens"] + usage["today"]["output_tokens"]
            ):
                break
            deadline.check(usage)
            await asyncio.sleep(0.05)
        assert usage["today"]["requests"] == 1, usage
    finally:
        await stop_live(live)

"""After Redis restarts, the connections it closed are replaced before use: no call fails on a
pooled connection the restart left behind, however long after the restart it is made."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from redis.exceptions import RedisError

from edge.store import open_store
from tests.support.redis_server import RedisServer

POOLED = 16  # connections open at the restart


@pytest.fixture
def server() -> Iterator[RedisServer]:
    own = RedisServer().start()  # restarted below: not the suite's shared server
    yield own
    own.stop()


async def test_no_call_fails_on_a_connection_the_restart_closed(server: RedisServer) -> None:
    async with open_store(server.url, redis_timeout=1.0) as store:
        redis = store.redis
        assert redis is not None

        async def held_ping() -> None:
            # A short blocking pop holds its connection, so all POOLED of them are open at once.
            await redis.blpop(["edge:test:nothing"], timeout=0.05)

        await asyncio.gather(*(held_ping() for _ in range(POOLED)))
        assert len(redis.connection_pool._available_connections) >= POOLED
        await asyncio.to_thread(server.restart)
        await asyncio.sleep(0.2)  # a call made a while after the restart, as in production
        failures: list[str] = []
        for _ in range(3):  # every pooled connection is used again, concurrently
            results = await asyncio.gather(
                *(held_ping() for _ in range(POOLED)), return_exceptions=True
            )
            failures += [repr(r) for r in results if isinstance(r, RedisError)]
        assert failures == []

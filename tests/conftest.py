"""Shared fixtures: a real redis-server, the fake upstream, live gateways on each store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session, on a free port."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Each store backend in turn; Redis is flushed first."""
    if request.param == "memory":
        return "memory://"
    server: RedisServer = request.getfixturevalue("redis_server")
    server.command("FLUSHALL")
    return server.url


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    """The scripted fake provider."""
    upstream = await FakeUpstream().start()
    yield upstream
    await upstream.stop()


@pytest.fixture
async def gateway(store_url: str, fake: FakeUpstream) -> AsyncIterator[Live]:
    """A live gateway on loopback, providers pointed at the fake upstream."""
    live = await start_live(settings_for(gateway_env(store_url, fake.url)))
    yield live
    await stop_live(live)

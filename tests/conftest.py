"""Shared fixtures: a real redis-server, the fake upstream, live gateways on each store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_modes import ALL_MODES, BASE_MODES, MARK
from tests.support.redis_sentinel import SentinelSet
from tests.support.redis_server import RedisServer


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker of tests that run on every Redis mode."""
    config.addinivalue_line(
        "markers", f"{MARK}: also run on a Redis Cluster and a Sentinel-managed Redis"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked redis_modes gets its store_url from every mode, cluster and Sentinel too
    (each started once per session); any other test from memory:// and one redis-server."""
    if "store_url" in metafunc.fixturenames:
        marked = metafunc.definition.get_closest_marker(MARK) is not None
        metafunc.parametrize("store_url", ALL_MODES if marked else BASE_MODES, indirect=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session, on a free port."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """One 3-master / 3-replica Redis Cluster for the session."""
    cluster = RedisCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelSet]:
    """One master, one replica and three sentinels for the session."""
    sentinels = SentinelSet().start()
    yield sentinels
    sentinels.stop()


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """Each store backend in turn; Redis is flushed first."""
    if request.param == "memory":
        return "memory://"
    if request.param == "cluster":
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        cluster.wait_ok()  # a test before may have killed a master
        cluster.flush()
        return cluster.url
    if request.param == "sentinel":
        sentinels: SentinelSet = request.getfixturevalue("redis_sentinel")
        sentinels.wait_ready()
        sentinels.flush()
        return sentinels.url
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

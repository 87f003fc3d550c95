"""Deployment health and use in the store, on every backend: a cooldown one client writes is
what another reads, a streak is forgotten on recovery, use counts per minute."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from edge.store import open_store
from edge.store.deployments import MINUTE, health_key, usage_key
from policies.deployments import Load

pytestmark = pytest.mark.redis_modes
NOW = 1_700_000_000.0  # at the start of a minute: NOW // 60 is whole
NAMES = ("east", "west")


async def test_cooldowns_written_by_one_client_are_read_by_another(store_url: str) -> None:
    async with open_store(store_url, redis_timeout=1.0) as one:
        assert await one.deployments.loads("gpt", NAMES, NOW, usage=False) == [Load(), Load()]
        await one.deployments.cool("gpt", "east", NOW + 5.5, 2)
        if store_url.startswith("memory://"):
            other = one  # one process: the same state
            found = await other.deployments.loads("gpt", NAMES, NOW, usage=False)
        else:
            async with open_store(store_url, redis_timeout=1.0) as other:
                found = await other.deployments.loads("gpt", NAMES, NOW, usage=False)
        assert found == [Load(cooled_until=NOW + 5.5, strikes=2), Load()]
        await one.deployments.recovered("gpt", "east")
        assert await one.deployments.loads("gpt", NAMES, NOW, usage=False) == [Load(), Load()]


async def test_use_is_counted_per_deployment_and_minute(store_url: str) -> None:
    async with open_store(store_url, redis_timeout=1.0) as store:
        deps = store.deployments
        await deps.used("gpt", {"east": (1, 100)}, NOW)
        await deps.used("gpt", {"east": (1, 50), "west": (1, 0)}, NOW + 1)
        await deps.used("other-model", {"east": (1, 7)}, NOW)
        assert await deps.loads("gpt", NAMES, NOW + 3, usage=True) == [
            Load(requests=2, tokens=150),
            Load(requests=1, tokens=0),
        ]
        # Without `usage` the counts are not read (a model with no provider-side limits).
        assert await deps.loads("gpt", NAMES, NOW + 3, usage=False) == [Load(), Load()]
        # The next minute starts from nothing.
        later = NOW + MINUTE
        assert await deps.loads("gpt", NAMES, later, usage=True) == [Load(), Load()]


def test_a_models_keys_share_one_cluster_slot() -> None:
    slot = key_slot(health_key("gpt{x}").encode())
    assert key_slot(usage_key("gpt{x}", 123).encode()) == slot

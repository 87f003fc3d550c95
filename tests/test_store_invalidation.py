"""Invalidation reaches every process on every Redis mode (sharded pub/sub on a cluster)."""

from __future__ import annotations

import asyncio

import pytest

from edge.store import open_store
from edge.store.redis_pubsub import FLUSH_ALL, RedisInvalidation
from tests.support.clock import wait_until

pytestmark = pytest.mark.redis_modes


async def test_a_topic_published_by_one_process_reaches_another(store_url: str) -> None:
    if store_url == "memory://":
        pytest.skip("memory:// is one process")
    async with (
        open_store(store_url, redis_timeout=1.0) as writer,
        open_store(store_url, redis_timeout=1.0) as reader,
    ):
        heard: list[str] = []
        reader.invalidation.subscribe(heard.append)
        assert isinstance(reader.invalidation, RedisInvalidation)
        await asyncio.wait_for(reader.invalidation.connected.wait(), 10)
        await writer.invalidation.publish("key:k1")
        await wait_until(lambda: "key:k1" in heard, "the topic to arrive")
        assert [t for t in heard if t != FLUSH_ALL] == ["key:k1"]

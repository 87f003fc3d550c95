"""Cross-replica invalidation over Redis pub/sub, with reconnects that flush every cache.

On one server or a Sentinel-managed master it is classic pub/sub. On a Redis Cluster it is
sharded pub/sub (SPUBLISH / SSUBSCRIBE, Redis 7 and Valkey): the channel lives on the shard that
owns its slot, and the subscriber listens on that shard's master, found again after a failover.
A cluster without it (Redis 6) gets classic pub/sub, which a cluster broadcasts to every node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import ResponseError, SlotNotCoveredError

from edge.store.base import Listener
from edge.store.clients import Client
from edge.store.driver import DRIVER_ERRORS, DriverBacked

log = logging.getLogger(__name__)
CHANNEL = "edge:invalidate"
FLUSH_ALL = "*"
MESSAGES = ("message", "smessage")


def _unknown_command(exc: ResponseError) -> bool:
    return "unknown command" in str(exc).lower()


class RedisInvalidation(DriverBacked):
    """Publishes on one channel; a background task delivers messages to local listeners."""

    def __init__(self, publisher: Client, subscriber: Client) -> None:
        self._pub = publisher
        self._sub = subscriber
        # Sharded pub/sub on a cluster until a server says it has none.
        self._sharded = isinstance(subscriber, RedisCluster)
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def publish(self, topic: str) -> None:
        """Tell every process (this one included, through its subscription) that topic changed."""
        if self._sharded and isinstance(self._pub, RedisCluster):
            try:
                await self._pub.spublish(CHANNEL, topic)
            except ResponseError as exc:
                if not _unknown_command(exc):
                    raise
                self._sharded = False
                await self._pub.publish(CHANNEL, topic)
        else:
            await self._pub.publish(CHANNEL, topic)
        # Deliver locally at once too, so the writer's own cache never serves a stale read.
        await self._deliver(topic)

    def subscribe(self, listener: Listener) -> None:
        """Register a listener."""
        self._listeners.append(listener)

    async def _deliver(self, topic: str) -> None:
        for listener in self._listeners:
            result = listener(topic)
            if asyncio.iscoroutine(result):
                await result

    def start(self) -> None:
        """Begin listening in the background."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="edge-invalidation")

    async def stop(self) -> None:
        """Stop listening."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> tuple[PubSub, Any]:
        """A subscription, and how to read its next message (waiting up to a second)."""
        if not isinstance(self._sub, RedisCluster):
            pubsub = self._sub.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(CHANNEL)
            return pubsub, lambda: pubsub.get_message(timeout=1.0)
        # The slot map may be stale after a failover: read it again before choosing a node.
        await self._sub.initialize()
        node: ClusterNode | None = self._sub.get_node_from_key(CHANNEL)
        if node is None:
            raise SlotNotCoveredError("no node serves the invalidation channel's slot")
        cluster = self._sub.pubsub(node=node, ignore_subscribe_messages=True)
        if self._sharded:
            try:
                await cluster.ssubscribe(CHANNEL)
            except ResponseError as exc:
                if not _unknown_command(exc):
                    raise
                self._sharded = False
        if self._sharded:
            # Naming the node lets its failure reach this loop (which flushes every cache),
            # where redis-py would move the subscription to the new master without a word.
            return cluster, lambda: cluster.get_sharded_message(
                ignore_subscribe_messages=True, timeout=1.0, target_node=node
            )
        await cluster.subscribe(CHANNEL)
        return cluster, lambda: cluster.get_message(timeout=1.0)

    async def _run(self) -> None:
        delay = 0.05
        while True:
            pubsub: PubSub | None = None
            try:
                pubsub, receive = await self._listen()
                self.connected.set()
                # Messages may have been missed while disconnected: drop every cached entry.
                await self._deliver(FLUSH_ALL)
                delay = 0.05
                while True:
                    msg = await receive()
                    if msg and msg.get("type") in MESSAGES:
                        data = msg["data"]
                        await self._deliver(data.decode() if isinstance(data, bytes) else str(data))
            except DRIVER_ERRORS as exc:
                self.connected.clear()
                log.warning("invalidation channel lost (%s); reconnecting", type(exc).__name__)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(*DRIVER_ERRORS):
                        await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

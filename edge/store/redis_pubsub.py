"""Cross-replica invalidation over Redis pub/sub, with reconnects that flush every cache."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis

from edge.store.base import Listener
from edge.store.driver import DRIVER_ERRORS, DriverBacked

log = logging.getLogger(__name__)
CHANNEL = "edge:invalidate"
FLUSH_ALL = "*"


class RedisInvalidation(DriverBacked):
    """Publishes on one channel; a background task delivers messages to local listeners."""

    def __init__(self, publisher: Redis, subscriber: Redis) -> None:
        self._pub = publisher
        self._sub = subscriber
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def publish(self, topic: str) -> None:
        """Tell every process (this one included, through its subscription) that topic changed."""
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

    async def _run(self) -> None:
        delay = 0.05
        while True:
            pubsub = self._sub.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self.connected.set()
                # Messages may have been missed while disconnected: drop every cached entry.
                await self._deliver(FLUSH_ALL)
                delay = 0.05
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg and msg.get("type") == "message":
                        data = msg["data"]
                        await self._deliver(data.decode() if isinstance(data, bytes) else str(data))
            except DRIVER_ERRORS as exc:
                self.connected.clear()
                log.warning("invalidation channel lost (%s); reconnecting", type(exc).__name__)
            finally:
                with contextlib.suppress(*DRIVER_ERRORS):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

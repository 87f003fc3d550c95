"""The store behind one interface: `memory://` (embedded) or `redis://` (shared by replicas)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig

from edge.store.audit import AuditLog, MemoryAudit, RedisAudit
from edge.store.base import (
    IdentityStore,
    Invalidation,
    StoreDisconnected,
    StoreTimeout,
    StoreUnavailable,
)
from edge.store.driver import DRIVER_ERRORS, translated
from edge.store.memory import LocalInvalidation, MemoryIdentity
from edge.store.quota import QuotaStore
from edge.store.quota_memory import MemoryQuota
from edge.store.quota_redis import RedisQuota
from edge.store.redis_identity import RedisIdentity
from edge.store.redis_pubsub import RedisInvalidation
from edge.store.responses import MemoryResponses, ResponseStore
from edge.store.responses_jobs import JobQueue, MemoryJobs, RedisJobs
from edge.store.responses_redis import RedisResponses
from edge.store.usage import MemoryUsage, RedisUsage, UsageStore

__all__ = [
    "Store",
    "StoreDisconnected",
    "StoreTimeout",
    "StoreUnavailable",
    "open_store",
    "translated",
]


@dataclass(slots=True)
class Store:
    """The domain stores of one backend, plus the shared Redis client when there is one."""

    url: str
    identity: IdentityStore
    invalidation: Invalidation
    usage: UsageStore
    responses: ResponseStore
    jobs: JobQueue
    redis: Redis | None = None
    quota: QuotaStore = field(default_factory=MemoryQuota)
    audit: AuditLog = field(default_factory=MemoryAudit)

    @property
    def shared(self) -> bool:
        """True when state is shared between processes (Redis)."""
        return self.redis is not None

    async def ping(self) -> bool:
        """Whether the backend answers now."""
        if self.redis is None:
            return True
        try:
            return bool(await self.redis.ping())
        except DRIVER_ERRORS:
            return False

    async def drop_idle_connections(self) -> None:
        """Close the pooled connections no call is using: after a Redis restart each would fail
        once more on its first use (connections in use are left to their calls)."""
        if self.redis is not None:
            with translated():
                await self.redis.connection_pool.disconnect(inuse_connections=False)


# redis-py's "auto" maintenance notifications (a Redis Cloud feature) switch off the pool's
# check that a connection is still open before it is handed out: after a Redis restart each
# pooled connection then failed the first call made on it, seconds or minutes later.
NO_MAINT_NOTIFICATIONS = MaintNotificationsConfig(enabled=False)


def redis_client(url: str, timeout: float, max_connections: int = 256) -> Redis:
    """A pooled client that fails fast: a short timeout and no silent retries."""
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        max_connections=max_connections,
        health_check_interval=30,
        maint_notifications_config=NO_MAINT_NOTIFICATIONS,
    )


@contextlib.asynccontextmanager
async def open_store(url: str, redis_timeout: float = 0.1) -> AsyncIterator[Store]:
    """Open the store named by a URL for the lifetime of the context."""
    if url.startswith("memory://"):
        usage = MemoryUsage()
        yield Store(
            url=url,
            identity=MemoryIdentity(),
            invalidation=LocalInvalidation(),
            usage=usage,
            responses=MemoryResponses(),
            jobs=MemoryJobs(),
            quota=MemoryQuota(usage),
        )
        return
    redis = redis_client(url, redis_timeout)
    subscriber = Redis.from_url(
        url,
        socket_connect_timeout=max(redis_timeout, 1.0),
        maint_notifications_config=NO_MAINT_NOTIFICATIONS,
    )
    invalidation = RedisInvalidation(redis, subscriber)
    invalidation.start()
    # Blocking reads (event log tails, the job queue) wait up to a few seconds: their own pool.
    blocking = Redis.from_url(
        url,
        socket_timeout=30.0,
        socket_connect_timeout=max(redis_timeout, 1.0),
        retry=Retry(NoBackoff(), 0),  # a failed blocking read is the caller's to retry
        maint_notifications_config=NO_MAINT_NOTIFICATIONS,
    )
    try:
        yield Store(
            url=url,
            identity=RedisIdentity(redis),
            invalidation=invalidation,
            usage=RedisUsage(redis),
            responses=RedisResponses(redis, blocking),
            jobs=RedisJobs(redis, blocking),
            redis=redis,
            quota=RedisQuota(redis),
            audit=RedisAudit(redis),
        )
    finally:
        await invalidation.stop()
        await subscriber.aclose()
        await blocking.aclose()
        await redis.aclose()

"""The store behind one interface: `memory://` (embedded) or `redis://` (shared by replicas)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from edge.store.audit import AuditLog, MemoryAudit, RedisAudit
from edge.store.base import (
    IdentityStore,
    Invalidation,
    StoreDisconnected,
    StoreTimeout,
    StoreUnavailable,
)
from edge.store.clients import Client, client_for, drop_idle
from edge.store.deployments import DeploymentStore, MemoryDeployments, RedisDeployments
from edge.store.driver import DRIVER_ERRORS, translated
from edge.store.memory import LocalInvalidation, MemoryIdentity
from edge.store.quota import QuotaStore
from edge.store.quota_leases import RedisLeases
from edge.store.quota_memory import MemoryQuota
from edge.store.quota_redis import RedisQuota
from edge.store.redis_identity import RedisIdentity
from edge.store.redis_pubsub import RedisInvalidation
from edge.store.responses import MemoryResponses, ResponseStore
from edge.store.responses_jobs import JobQueue, MemoryJobs, RedisJobs
from edge.store.responses_redis import RedisResponses
from edge.store.slots import check_slots
from edge.store.urls import parse_store_url
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
    redis: Client | None = None
    quota: QuotaStore = field(default_factory=MemoryQuota)
    audit: AuditLog = field(default_factory=MemoryAudit)
    deployments: DeploymentStore = field(default_factory=MemoryDeployments)
    leases: RedisLeases | None = None  # request-rate leases: only a shared store has them

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
                await drop_idle(self.redis)


def redis_client(url: str, timeout: float, max_connections: int = 256) -> Client:
    """A pooled client that fails fast: a short timeout and no silent retries."""
    return client_for(parse_store_url(url), timeout, timeout, max_connections)


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
    target = parse_store_url(url)
    redis = client_for(target, redis_timeout, redis_timeout)
    # The subscriber waits for messages: no socket timeout, and no health checks to interleave.
    subscriber = client_for(target, None, max(redis_timeout, 1.0), 4, 0)
    invalidation = RedisInvalidation(redis, subscriber)
    # Blocking reads (event log tails, the job queue) wait up to a few seconds: their own pool.
    blocking = client_for(target, 30.0, max(redis_timeout, 1.0))
    try:
        if target.mode == "cluster":
            # Every script's keys must hash to one slot: refuse to start otherwise.
            check_slots()
        invalidation.start()
        yield Store(
            url=url,
            identity=RedisIdentity(redis),
            invalidation=invalidation,
            usage=RedisUsage(redis),
            responses=RedisResponses(redis, blocking, legacy=target.mode != "cluster"),
            jobs=RedisJobs(redis, blocking),
            redis=redis,
            quota=RedisQuota(redis),
            audit=RedisAudit(redis),
            deployments=RedisDeployments(redis),
            leases=RedisLeases(redis),
        )
    finally:
        await invalidation.stop()
        await subscriber.aclose()
        await blocking.aclose()
        await redis.aclose()

"""redis-py clients for each store URL: one server, a Sentinel-managed master, a Redis Cluster.

Every client fails fast (a short timeout, no silent retries): a failed call is the quota
engine's to decide on, by its failure policy. On Sentinel a dropped connection asks the
sentinels for the master again, so a promoted replica is found on the next call; on a cluster a
failed call marks the slot map stale and the next call reads it again from the live nodes.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig

from edge.store.urls import RedisTarget

Client: TypeAlias = Redis | RedisCluster

# redis-py's "auto" maintenance notifications (a Redis Cloud feature) switch off the pool's
# check that a connection is still open before it is handed out: after a Redis restart each
# pooled connection then failed the first call made on it, seconds or minutes later.
NO_MAINT_NOTIFICATIONS = MaintNotificationsConfig(enabled=False)

# TLS settings a URL's query may carry, handed to redis-py as they are.
_TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")


def _tls(target: RedisTarget) -> dict[str, Any]:
    if not target.tls:
        return {}
    found: dict[str, Any] = {"ssl": True}
    found.update({k: v for k, v in target.options.items() if k in _TLS_OPTIONS})
    return found


def client_for(
    target: RedisTarget,
    timeout: float | None,
    connect_timeout: float,
    max_connections: int = 256,
    health_check_interval: int = 30,
) -> Client:
    """A pooled client for the target that fails fast."""
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": Retry(NoBackoff(), 0),
        "maint_notifications_config": NO_MAINT_NOTIFICATIONS,
    }
    if target.mode == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            username=target.username,
            password=target.password,
            max_connections=max_connections,
            health_check_interval=health_check_interval,
            # (No load_balancing_strategy: a slot's keys are read from its master, where they
            # are written; a replica may lag behind.)
            **common,
            **_tls(target),
        )
    if target.mode == "sentinel":
        master: Redis = _sentinel(target, connect_timeout).master_for(
            target.master,
            redis_class=Redis,
            db=target.db,
            username=target.username,
            password=target.password,
            max_connections=max_connections,
            health_check_interval=health_check_interval,
            **common,
            **_tls(target),
        )
        return master
    return Redis.from_url(
        target.url,
        max_connections=max_connections,
        health_check_interval=health_check_interval,
        **common,
    )


def _sentinel(target: RedisTarget, connect_timeout: float) -> Sentinel:
    """The sentinels, with their own credentials (and TLS only when asked for)."""
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": max(connect_timeout, 0.5),
        "socket_connect_timeout": connect_timeout,
        "username": target.sentinel_username,
        "password": target.sentinel_password,
    }
    if target.options.get("sentinel_tls") in ("1", "true", "yes"):
        sentinel_kwargs["ssl"] = True
        sentinel_kwargs.update({k: v for k, v in target.options.items() if k in _TLS_OPTIONS})
    return Sentinel(list(target.nodes), sentinel_kwargs=sentinel_kwargs)


async def drop_idle(client: Client) -> None:
    """Close the pooled connections no call is using (connections in use are left alone)."""
    if isinstance(client, RedisCluster):
        for node in client.get_nodes():
            await node.disconnect_free_connections()
        return
    await client.connection_pool.disconnect(inuse_connections=False)


async def drop_all(client: Client) -> None:
    """Close every pooled connection, so that a call blocked on one fails at once."""
    if isinstance(client, RedisCluster):
        for node in client.get_nodes():
            await node.disconnect()
        return
    await client.connection_pool.disconnect()

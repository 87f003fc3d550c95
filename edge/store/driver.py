"""The driver's failures become the store's own, in this one module: every Redis-backed store
derives from `DriverBacked`, so its public methods raise `StoreUnavailable` (a `StoreTimeout`
or `StoreDisconnected` when that can be told) and nothing of redis-py, the way `limits` wraps
its storages' driver errors once in their base class."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, ParamSpec, TypeVar

from redis.exceptions import ClusterDownError, RedisClusterUnreachableError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from edge.store.base import StoreDisconnected, StoreTimeout, StoreUnavailable

P = ParamSpec("P")
R = TypeVar("R")

# OSError: a socket failure that redis-py let through unwrapped (TimeoutError included).
DRIVER_ERRORS = (RedisError, OSError)
# A cluster without a master for a slot (mid-failover), or with no node reachable, is as
# unreachable as a dropped connection; a Sentinel without a master (MasterNotFoundError) is a
# ConnectionError already.
_UNREACHABLE = (
    RedisConnectionError,
    ConnectionError,
    ClusterDownError,
    RedisClusterUnreachableError,
)


def translate(exc: BaseException) -> StoreUnavailable:
    """The store's exception for a driver's failure."""
    reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, RedisTimeoutError | TimeoutError):
        return StoreTimeout(reason)
    if isinstance(exc, _UNREACHABLE):
        return StoreDisconnected(reason)
    return StoreUnavailable(reason)


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """A block of store calls: any driver or socket failure in it raises `StoreUnavailable`."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise translate(exc) from exc


def translating(
    method: Callable[P, Coroutine[Any, Any, R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """A coroutine method whose driver failures are raised as the store's exceptions."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc

    return call


class DriverBacked:
    """Base of the stores backed by redis-py: each public coroutine method a subclass defines
    raises the store's exceptions only (private helpers are reached through those)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in list(vars(cls).items()):
            if not name.startswith("_") and inspect.iscoroutinefunction(value):
                setattr(cls, name, translating(value))

"""The store raises its own exceptions, never redis-py's: a timeout, a lost connection and any
other driver failure each become a `StoreUnavailable` that callers can tell apart."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from edge.store import StoreDisconnected, StoreTimeout, StoreUnavailable, open_store
from edge.store.driver import DriverBacked, translate


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (RedisTimeoutError("Timeout reading from socket"), StoreTimeout),
        (TimeoutError(), StoreTimeout),
        (RedisConnectionError("Connection refused"), StoreDisconnected),
        (ConnectionResetError(), StoreDisconnected),
        (ResponseError("OOM command not allowed"), StoreUnavailable),
        (OSError("bad file descriptor"), StoreUnavailable),
    ],
)
def test_each_driver_failure_has_its_store_exception(
    raised: BaseException, expected: type[StoreUnavailable]
) -> None:
    translated = translate(raised)
    assert type(translated) is expected
    assert type(raised).__name__ in str(translated)


class _Flaky(DriverBacked):
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def call(self) -> None:
        raise self.exc

    async def _helper(self) -> None:
        raise self.exc


async def test_public_methods_are_wrapped_and_private_helpers_left_alone() -> None:
    flaky = _Flaky(RedisConnectionError("gone"))
    with pytest.raises(StoreDisconnected) as info:
        await flaky.call()
    assert isinstance(info.value.__cause__, RedisConnectionError)
    with pytest.raises(RedisConnectionError):
        await flaky._helper()


async def test_a_store_whose_redis_is_gone_raises_no_driver_error() -> None:
    async with open_store("redis://127.0.0.1:1/0", redis_timeout=0.2) as store:
        with pytest.raises(StoreDisconnected) as info:
            await store.identity.get_account("a1")
        assert not isinstance(info.value, RedisError)
        with pytest.raises(StoreUnavailable):
            await store.quota.read(["c"], ["s"])
        await store.drop_idle_connections()
        assert not await store.ping()

"""The fault proxy itself: passes bytes, adds latency, resets, and blackholes."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.clock import Stopwatch
from tests.support.fault_proxy import FaultProxy


@pytest.fixture
async def echo_and_proxy():
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = await FaultProxy("127.0.0.1", port).start()
    yield proxy
    await proxy.stop()
    server.close()
    await server.wait_closed()


async def roundtrip(proxy: FaultProxy, timeout: float = 10.0) -> tuple[bytes, float]:
    """Bytes echoed through the proxy, and how long it took (a figure to print). The
    timeout bounds the test's own run time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    took = Stopwatch()
    writer.write(b"ping")
    try:
        data = await asyncio.wait_for(reader.read(4), timeout)
    finally:
        writer.close()
    return data, took.elapsed()


async def test_pass_and_latency(
    echo_and_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delay is shown by the waits the proxy makes, not by the clock: none when passing
    bytes, one of the set latency per direction when adding it."""
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded_sleep(delay: float, *args: object) -> object:
        if delay > 0:
            waits.append(delay)
        return await real_sleep(delay, *args)

    monkeypatch.setattr(asyncio, "sleep", recorded_sleep)
    data, fast = await roundtrip(echo_and_proxy)
    assert data == b"ping" and waits == []
    echo_and_proxy.set("latency", 0.2)
    data, slow = await roundtrip(echo_and_proxy)
    assert data == b"ping" and waits == [0.2, 0.2]  # both directions are delayed
    print(f"round trip {fast * 1000:.1f} ms, {slow * 1000:.0f} ms with 200 ms each way")


async def test_blackhole_is_silence(echo_and_proxy: FaultProxy) -> None:
    echo_and_proxy.set("blackhole")
    with pytest.raises(asyncio.TimeoutError):
        await roundtrip(echo_and_proxy, timeout=0.3)  # silence for 0.3 s: nothing came back


async def test_reset_drops_connections(echo_and_proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_and_proxy.port)
    writer.write(b"x")
    assert await reader.read(1) == b"x"
    echo_and_proxy.set("reset")
    assert await asyncio.wait_for(reader.read(1), 10) == b""  # bounds the test's own run time
    writer.close()

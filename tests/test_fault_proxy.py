"""The fault proxy itself: passes bytes, adds latency, resets, and blackholes."""

from __future__ import annotations

import asyncio
import time

import pytest

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


async def roundtrip(proxy: FaultProxy, timeout: float = 2.0) -> tuple[bytes, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    started = time.monotonic()
    writer.write(b"ping")
    try:
        data = await asyncio.wait_for(reader.read(4), timeout)
    finally:
        writer.close()
    return data, time.monotonic() - started


async def test_pass_and_latency(echo_and_proxy: FaultProxy) -> None:
    data, fast = await roundtrip(echo_and_proxy)
    assert data == b"ping" and fast < 0.2
    echo_and_proxy.set("latency", 0.2)
    data, slow = await roundtrip(echo_and_proxy)
    assert data == b"ping" and slow >= 0.4  # both directions are delayed


async def test_blackhole_is_silence(echo_and_proxy: FaultProxy) -> None:
    echo_and_proxy.set("blackhole")
    with pytest.raises(asyncio.TimeoutError):
        await roundtrip(echo_and_proxy, timeout=0.3)


async def test_reset_drops_connections(echo_and_proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_and_proxy.port)
    writer.write(b"x")
    assert await reader.read(1) == b"x"
    echo_and_proxy.set("reset")
    assert await asyncio.wait_for(reader.read(1), 1) == b""
    writer.close()

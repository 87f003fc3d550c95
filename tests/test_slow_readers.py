"""Clients that read slowly or not at all: a stalled reader is dropped by the stream write timeout
and its provider call closed; a slow reader that keeps taking bytes is not; what piles up for
either is bounded. The long version (10% of clients at 1 KiB/s) is in tests/soak, which also
holds the drop to its timing (after the write timeout, and the provider call closed within a
second of it); here those are printed figures."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.clock import Deadline, stamp, wait_until
from tests.support.fake_upstream import FakeUpstream, Scenario, Seen
from tests.support.gateway import (
    GatewayProcess,
    Live,
    gateway_env,
    settings_for,
    start_live,
    stop_live,
)
from tests.support.rawhttp import connect, request_bytes

WRITE_TIMEOUT = 1.0
# Buffers at both ends stay small, as a remote client's and a remote provider's would be: what
# piles up in between is then the gateway's.
CLIENT_RCVBUF = 16 * 1024
PROVIDER_SNDBUF = 64 * 1024
# What may sit at either end: kernel buffers (Linux doubles what is asked) and the user-space
# buffer of each end's own transport or reader.
PROVIDER_HOLDS = 2 * PROVIDER_SNDBUF + 128 * 1024
CLIENT_HOLDS = 2 * CLIENT_RCVBUF + CLIENT_RCVBUF + 64 * 1024
BUFFER_BOUND = 1024 * 1024  # what the gateway may hold for one slow stream


@pytest.fixture
async def live(fake: FakeUpstream) -> AsyncIterator[Live]:
    env = gateway_env("memory://", fake.url, EDGE_STREAM_WRITE_TIMEOUT=str(WRITE_TIMEOUT))
    gateway = await start_live(settings_for(env))
    yield gateway
    await stop_live(gateway)


async def dropped_after(seen: Seen) -> float:
    """Wait until the gateway closes the provider call (the endless stream never ends by
    itself); how long after its last write, a figure to print."""
    await wait_until(
        lambda: seen.disconnected_at is not None, "the stalled stream was never dropped", 20
    )
    assert seen.disconnected_at is not None
    return seen.disconnected_at - seen.last_write


def stream_request(key: str) -> bytes:
    """A streamed Chat Completions call to the provider behind the fake."""
    body = {"model": "gpt-5-4", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    return request_bytes("POST", "/v1/chat/completions", body, Authorization=f"Bearer {key}")


async def test_a_stalled_reader_is_dropped_and_its_provider_call_closed(
    live: Live, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge.stream")
    tenant = await live.tenant()
    fake.push(Scenario(endless=True, sndbuf=PROVIDER_SNDBUF))
    reader, writer = await connect(live.url, rcvbuf=CLIENT_RCVBUF)
    writer.write(stream_request(tenant.key))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200")
    # The client reads nothing more. The provider's writes stop once every buffer is full.
    seen = fake.requests[0]
    stalled_for = await dropped_after(seen)
    # Dropped because the client took nothing for the write timeout: the gateway says so.
    dropped = [r for r in caplog.records if r.getMessage().startswith("client stopped reading")]
    assert len(dropped) == 1
    # Figures: the drop counted from the provider's last write (which lands a little after the
    # gateway's output stalls: the buffers in between fill first), and the provider call's
    # close from the drop (both clocks read as wall time).
    assert seen.disconnected_at is not None
    closed_after_drop = seen.disconnected_at - stamp() + time.time() - dropped[0].created
    print(
        f"dropped {stalled_for:.2f} s after the provider's last write (timeout {WRITE_TIMEOUT} s)"
    )
    print(f"provider call closed {closed_after_drop * 1000:.0f} ms after the drop")
    # Everything the provider sent and the client did not take, less what the ends hold.
    held = seen.sent - PROVIDER_HOLDS - CLIENT_HOLDS
    assert held <= BUFFER_BOUND, held
    print(f"stalled reader: at most {held / 1024:.0f} KiB held by the gateway")
    assert fake.open_streams == 0
    writer.close()


async def test_a_slow_reader_that_keeps_reading_is_not_dropped(
    live: Live, fake: FakeUpstream
) -> None:
    tenant = await live.tenant()
    fake.push(Scenario(endless=True, sndbuf=PROVIDER_SNDBUF))
    reader, writer = await connect(live.url, rcvbuf=CLIENT_RCVBUF)
    writer.write(stream_request(tenant.key))
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    received = 0
    # Four write timeouts long (how long this reader runs), far slower than the provider: the
    # gateway's buffers stay full, yet every write makes some progress.
    reading = Deadline(WRITE_TIMEOUT * 4)
    while not reading.passed():
        chunk = await asyncio.wait_for(reader.read(4096), 5)
        assert chunk, "the slow reader was dropped"
        received += len(chunk)
        await asyncio.sleep(0.1)
    seen = fake.requests[0]
    assert seen.disconnected_at is None
    held = seen.sent - received - PROVIDER_HOLDS - CLIENT_HOLDS
    assert held <= BUFFER_BOUND, held
    writer.transport.abort()
    print(f"slow reader: {received} B read, at most {held / 1024:.0f} KiB held by the gateway")


async def test_edge_serve_drops_a_stalled_reader_too(fake: FakeUpstream) -> None:
    """The same under `edge serve` (uvloop, whose transports are not asyncio's classes)."""
    env = gateway_env("memory://", fake.url, EDGE_STREAM_WRITE_TIMEOUT=str(WRITE_TIMEOUT))
    proc = GatewayProcess(env).start()
    try:
        async with aiohttp.ClientSession() as http:
            tenant = await Live(url=proc.url, http=http).tenant()
        fake.push(Scenario(endless=True, sndbuf=PROVIDER_SNDBUF))
        reader, writer = await connect(proc.url, rcvbuf=CLIENT_RCVBUF)
        writer.write(stream_request(tenant.key))
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        seen = fake.requests[0]
        stalled_for = await dropped_after(seen)
        print(f"dropped {stalled_for:.2f} s after the provider's last write")
        held = seen.sent - PROVIDER_HOLDS - CLIENT_HOLDS
        assert held <= BUFFER_BOUND, held
        writer.close()
    finally:
        proc.stop()

"""No connection is held for ever by a client that sends nothing: the request-head deadline
(EDGE_HEADER_TIMEOUT) runs from the moment a connection opens, not from its first byte, and an
idle keep-alive connection is closed after EDGE_KEEPALIVE_TIMEOUT (aiohttp's own default is an
hour, and it never applied to a connection that had not yet sent a request)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from edge.settings import SettingsError, load_settings
from tests.support.clock import Stopwatch
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.rawhttp import closed_after, connect, read_answer, request_bytes

LiveFactory = Callable[..., Awaitable[Live]]
# Bounds the test's own wait for the server to close: far above the short timeouts set here.
GIVE_UP = 20.0


@pytest.fixture
async def live_with() -> AsyncIterator[LiveFactory]:
    started: list[Live] = []

    async def start(**env: str) -> Live:
        live = await start_live(settings_for(gateway_env("memory://", None, **env)))
        started.append(live)
        return live

    yield start
    for live in started:
        await stop_live(live)


async def test_a_connection_that_never_sends_a_byte_is_closed(live_with: LiveFactory) -> None:
    live = await live_with(EDGE_HEADER_TIMEOUT="0.5", EDGE_KEEPALIVE_TIMEOUT="3600")
    reader, writer = await connect(live.url)
    try:
        took = await closed_after(reader, GIVE_UP)  # TimeoutError: never closed
        print(f"a silent connection was closed after {took:.2f} s (EDGE_HEADER_TIMEOUT 0.5 s)")
    finally:
        writer.close()


async def test_an_idle_keep_alive_connection_is_closed(live_with: LiveFactory) -> None:
    live = await live_with(EDGE_HEADER_TIMEOUT="3600", EDGE_KEEPALIVE_TIMEOUT="0.5")
    reader, writer = await connect(live.url)
    try:
        writer.write(request_bytes("GET", "/healthz"))
        answer = await read_answer(reader, timeout=GIVE_UP)
        assert answer.status == 200 and answer.headers.get("connection") != "close"
        took = Stopwatch()
        await closed_after(reader, GIVE_UP)  # TimeoutError: kept open
        print(f"an idle keep-alive connection was closed after {took.elapsed():.2f} s")
    finally:
        writer.close()


async def test_a_keep_alive_connection_serves_requests_until_it_idles(
    live_with: LiveFactory,
) -> None:
    """The deadlines take nothing from a client that keeps sending: each request is answered
    on the same connection."""
    live = await live_with(EDGE_HEADER_TIMEOUT="5", EDGE_KEEPALIVE_TIMEOUT="5")
    reader, writer = await connect(live.url)
    try:
        for _ in range(5):
            writer.write(request_bytes("GET", "/healthz"))
            assert (await read_answer(reader, timeout=GIVE_UP)).status == 200
    finally:
        writer.close()


def test_the_timeouts_are_settings() -> None:
    defaults = load_settings({}).guards
    assert (defaults.header_timeout, defaults.keepalive_timeout) == (15.0, 75.0)
    assert load_settings({"EDGE_KEEPALIVE_TIMEOUT": "30"}).guards.keepalive_timeout == 30.0
    for bad in ("0", "-1", "soon"):
        with pytest.raises(SettingsError, match="EDGE_KEEPALIVE_TIMEOUT"):
            load_settings({"EDGE_KEEPALIVE_TIMEOUT": bad})

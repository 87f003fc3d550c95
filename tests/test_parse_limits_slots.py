"""Large bodies are read and parsed in a few slots per process (`edge.limits_parse`): one account
holds at most its share, a body that finds no slot in time gets 503 `overloaded` with
`Retry-After`, another account's body and any small body are served meanwhile, and every slot
is given back whatever the answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from edge.app import create_app
from edge.limits_parse import LARGE_BODY, PARSE_SLOTS, ParseSlots, install
from edge.server import make_runner
from tests.support.clock import wait_until
from tests.support.gateway import Live, gateway_env, settings_for
from tests.support.ports import free_port
from tests.support.rawhttp import connect, read_answer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    """An in-process gateway with two parse slots, one per account, and a short wait."""
    port = free_port()
    settings = settings_for(gateway_env("memory://", None)).with_overrides(
        host="127.0.0.1", port=port
    )
    app = create_app(settings)
    install(app, ParseSlots(total=2, per_account=1, wait=0.3))
    runner = make_runner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    gateway = Live(
        url=f"http://127.0.0.1:{port}", app=app, runner=runner, http=aiohttp.ClientSession()
    )
    yield gateway
    assert gateway.http is not None
    await gateway.http.close()
    await runner.cleanup()


def _body(size: int) -> bytes:
    text = "x" * (size - 100)
    return orjson.dumps(
        {"model": "local/echo", "max_tokens": 4, "messages": [{"role": "user", "content": text}]}
    )


def _head(key: str, length: int) -> bytes:
    return (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}"
        f"\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


class Trickle:
    """A large body sent in two halves: it holds a slot until its second half arrives."""

    def __init__(self, url: str, key: str, body: bytes) -> None:
        self.url, self.key, self.body = url, key, body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        """Send the head and the first half."""
        self.reader, self.writer = await connect(self.url)
        self.writer.write(_head(self.key, len(self.body)) + self.body[: len(self.body) // 2])
        await self.writer.drain()

    async def finish(self) -> int:
        """Send the rest; the answer's status."""
        assert self.reader is not None and self.writer is not None
        self.writer.write(self.body[len(self.body) // 2 :])
        await self.writer.drain()
        answer = await read_answer(self.reader, timeout=30)
        self.writer.close()
        return answer.status


async def _send(url: str, key: str, body: bytes) -> tuple[int, dict[str, str], Any]:
    reader, writer = await connect(url)
    try:
        writer.write(_head(key, len(body)) + body)
        await writer.drain()
        answer = await read_answer(reader, timeout=30)  # bounds the test's own run time
        return answer.status, answer.headers, answer.json()
    finally:
        writer.close()


async def test_one_account_holds_its_share_and_no_more(live: Live) -> None:
    assert live.app is not None
    slots = live.app[PARSE_SLOTS]
    first, second = await live.tenant(), await live.tenant()
    big = _body(2 * LARGE_BODY)
    holding = Trickle(live.url, first.key, big)
    await holding.start()
    await wait_until(lambda: slots.held == 1, "the first large body holding its slot")
    # The same account's next large body finds its share taken: refused, its body unread.
    status, headers, answer = await _send(live.url, first.key, big)
    assert status == 503, answer
    assert answer["error"]["code"] == "overloaded" and headers["retry-after"] == "1"
    # A small body takes no slot, and another account has its own.
    status, _, answer = await _send(live.url, first.key, _body(1000))
    assert status == 200, answer
    status, _, answer = await _send(live.url, second.key, big)
    assert status == 200, answer
    assert await holding.finish() == 200
    assert slots.held == 0 and slots.accounts == 0  # every slot given back


async def test_the_process_holds_its_total_and_no_more(live: Live) -> None:
    assert live.app is not None
    slots = live.app[PARSE_SLOTS]
    tenants = [await live.tenant() for _ in range(3)]
    big = _body(2 * LARGE_BODY)
    holding = [Trickle(live.url, t.key, big) for t in tenants[:2]]
    for trickle in holding:
        await trickle.start()
    await wait_until(lambda: slots.held == 2, "two large bodies holding both slots")
    status, _, answer = await _send(live.url, tenants[2].key, big)
    assert status == 503 and answer["error"]["code"] == "overloaded", answer
    assert [await t.finish() for t in holding] == [200, 200]
    status, _, answer = await _send(live.url, tenants[2].key, big)
    assert status == 200, answer
    assert slots.held == 0 and slots.accounts == 0


async def test_a_client_that_leaves_gives_its_slot_back(live: Live) -> None:
    assert live.app is not None
    slots = live.app[PARSE_SLOTS]
    tenant = await live.tenant()
    big = _body(2 * LARGE_BODY)
    holding = Trickle(live.url, tenant.key, big)
    await holding.start()
    await wait_until(lambda: slots.held == 1, "the large body holding its slot")
    waiting = Trickle(live.url, tenant.key, big)
    await waiting.start()  # waits behind the first for the account's one slot
    await wait_until(lambda: slots.accounts == 1, "the account holding its slot")
    for trickle in (waiting, holding):
        assert trickle.writer is not None
        trickle.writer.transport.abort()
    await wait_until(
        lambda: slots.held == 0 and slots.accounts == 0, "both clients' slots given back"
    )
    status, _, answer = await _send(live.url, tenant.key, big)
    assert status == 200, answer

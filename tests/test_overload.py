"""Load shedding: past EDGE_MAX_INFLIGHT requests at once, a new one gets 503 with Retry-After in
its API's shape before any work is done on it (not even reading its body); probes still answer,
and capacity comes back as requests end. The open-loop run at twice capacity is in tests/soak."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.clock import wait_until
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.rawhttp import connect, read_answer

LIMIT = 4


@pytest.fixture
async def live(fake: FakeUpstream) -> AsyncIterator[Live]:
    env = gateway_env("memory://", fake.url, EDGE_MAX_INFLIGHT=str(LIMIT))
    gateway = await start_live(settings_for(env))
    yield gateway
    await stop_live(gateway)


async def _hold(http: aiohttp.ClientSession, url: str, key: str) -> int:
    async with http.post(
        f"{url}/v1/chat/completions",
        json={"model": "gpt-5-4", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {key}"},
    ) as resp:
        await resp.read()
        return resp.status


SHAPES = {
    "/v1/chat/completions": lambda b: b["error"]["code"] == "overloaded",
    "/v1/messages": lambda b: b["type"] == "error" and b["error"]["type"] == "overloaded_error",
    "/v1beta/models/gemini-2-5-flash:generateContent": lambda b: (
        b["error"]["status"] == "UNAVAILABLE"
    ),
}


async def test_excess_is_shed_with_503_and_retry_after(live: Live, fake: FakeUpstream) -> None:
    assert live.http is not None
    tenant = await live.tenant()
    release = asyncio.Event()  # the provider answers the held requests once it is set
    fake.push(*(Scenario(body=b'{"choices":[]}', hold=release) for _ in range(LIMIT)))
    async with aiohttp.ClientSession() as http:
        held = [asyncio.create_task(_hold(http, live.url, tenant.key)) for _ in range(LIMIT)]
        try:
            await wait_until(
                lambda: len(fake.requests) >= LIMIT, "the held requests never reached the provider"
            )
            for path, shaped in SHAPES.items():
                # The body is announced but never sent: an answer (a 503, not a body timeout)
                # proves it was not waited for. How soon is make soak's (test_overload_soak.py).
                reader, writer = await connect(live.url)
                writer.write(
                    f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    f"Authorization: Bearer {tenant.key}\r\nContent-Length: 5000\r\n\r\n".encode()
                )
                answer = await read_answer(reader, timeout=10)  # bounds the test's own run time
                writer.close()
                assert answer.status == 503, (path, answer)
                assert answer.headers["retry-after"] == "1"
                assert shaped(answer.json()), (path, answer.body)
            for probe in ("/healthz", "/readyz", "/metrics"):
                async with http.get(f"{live.url}{probe}") as resp:
                    assert resp.status == 200, probe
            assert len(fake.requests) == LIMIT  # nothing shed reached the provider
        finally:
            release.set()  # the held requests end, whatever happened
        assert await asyncio.gather(*held) == [200] * LIMIT
        # Capacity is back as soon as the held requests end.
        status, _ = await live.admin("GET", "/accounts")
        assert status == 200

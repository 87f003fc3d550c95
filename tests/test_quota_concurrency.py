"""A concurrency limit on streams: the sixth concurrent stream is refused, and a new one is
admitted once one ends (memory:// and redis://)."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.support.clock import Deadline
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live
from tests.test_quota_support import chat, chat_body, open_stream

LIMIT = 5


async def test_sixth_stream_refused_then_admitted_when_one_ends(
    gateway: Live, fake: FakeUpstream
) -> None:
    tenant = await gateway.tenant(quota={"max_concurrent": LIMIT})
    fake.push(*(Scenario(endless=True, delay_chunks=0.01) for _ in range(LIMIT + 1)))
    assert gateway.http is not None
    async with aiohttp.ClientSession() as http:
        streams = [await open_stream(http, gateway.url, tenant.key) for _ in range(LIMIT)]
        status, headers, body = await chat(
            gateway.http, gateway.url, tenant.key, chat_body(stream=True, model="gpt-5-4-nano")
        )
        assert status == 429
        assert body["error"]["code"] == "REQUEST_LIMIT_EXCEEDED"
        assert "5 concurrent requests for this key" in body["error"]["message"]
        assert headers["Retry-After"] == "1"
        status, usage = await gateway.admin("GET", f"/keys/{tenant.key_id}/usage")
        assert usage["in_flight"] == LIMIT
        streams[0].close()  # the client goes away: its slot is released
        deadline = Deadline(10)
        while True:
            async with gateway.http.post(
                f"{gateway.url}/v1/chat/completions",
                json=chat_body(stream=True, model="gpt-5-4-nano"),
                headers={"Authorization": f"Bearer {tenant.key}"},
            ) as resp:
                if resp.status == 200:
                    await resp.content.readany()
                    break
                assert resp.status == 429
            deadline.check("the ended stream's slot was never released")
            await asyncio.sleep(0.02)
        for stream in streams[1:]:
            stream.close()
    deadline = Deadline(10)
    while (await gateway.admin("GET", f"/keys/{tenant.key_id}/usage"))[1]["in_flight"]:
        deadline.check("reservations left open")
        await asyncio.sleep(0.02)

"""A background run's resume stream keeps an idle connection alive (aiohttp-sse's pings), and the
comment lines change nothing an SSE client reads; relayed and translated streams carry none."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from tests.support.fake_upstream import Scenario
from tests.support.gateway import gateway_env, settings_for, start_live, stop_live
from tests.test_background import TERMINAL, slow_frames, wait_status
from tests.test_responses_passthrough import parse_sse
from tests.test_responses_schema import validate_stream

PING = b": ping\n\n"


@pytest.fixture
async def pinging(store_url, fake):
    live = await start_live(
        settings_for(gateway_env(store_url, fake.url, EDGE_STREAM_KEEPALIVE="0.05"))
    )
    yield live
    await stop_live(live)


async def test_a_quiet_resume_stream_gets_comment_pings(pinging, fake) -> None:
    tenant = await pinging.tenant()
    fake.push(Scenario(frames=slow_frames(), delay_headers=0.6))
    sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{pinging.url}/v1", max_retries=0)
    try:
        resp = await sdk.responses.create(model="gpt-5-4", input="long", background=True)
        async with pinging.http.get(
            f"{pinging.url}/v1/responses/{resp.id}?stream=true",
            headers={"Authorization": f"Bearer {tenant.key}"},
        ) as got:
            assert got.status == 200
            assert got.headers["Content-Type"].startswith("text/event-stream")
            raw = await asyncio.wait_for(got.read(), 30)
        done = await wait_status(sdk, resp.id, TERMINAL)
    finally:
        await sdk.close()
    # Pings came while the run waited for the provider's next event...
    assert raw.count(PING) >= 2
    # ...only between events, and a reader sees exactly the logged events.
    without = raw.replace(PING, b"")
    assert b": ping" not in without
    events = [json.loads(data) for _, data in parse_sse(raw)]
    assert events == [json.loads(data) for _, data in parse_sse(without)]
    validate_stream(events)
    assert events[-1]["type"] == "response.completed" and done.status == "completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


async def test_a_relayed_stream_carries_no_pings(pinging, fake) -> None:
    tenant = await pinging.tenant()
    fake.push(Scenario(frames=slow_frames()[:8], delay_chunks=0.12))
    async with pinging.http.post(
        f"{pinging.url}/v1/responses",
        headers={"Authorization": f"Bearer {tenant.key}"},
        json={"model": "gpt-5-4", "input": "x", "stream": True},
    ) as got:
        assert got.status == 200
        raw = await asyncio.wait_for(got.read(), 30)
    assert raw and b": ping" not in raw

"""SIGKILL of a process in the middle of several background runs, with more queued behind them:
once the lease passes, the surviving process ends every run exactly once (the ones that had
started fail with `worker_lost`, the queued ones run to completion), and no run is visible to
another account at any point."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.clock import Deadline, Stopwatch, wait_until
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import GatewayProcess, Live, Tenant
from tests.support.streams import frames
from tests.test_background_processes import (
    LEASE,
    TERMINALS,
    env_for,
    events_of,
    start,
    stop,
)

pytestmark = pytest.mark.timeout(90)
RUNNING = 3  # the doomed process's background concurrency: these are in progress when it dies
QUEUED = 3  # behind them in the queue


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    yield session
    await session.close()


async def create(http: aiohttp.ClientSession, proc: GatewayProcess, key: str, n: int) -> str:
    async with http.post(
        f"{proc.url}/v1/responses",
        json={"model": "gpt-5-4", "input": f"run {n}", "background": True},
        headers={"Authorization": f"Bearer {key}"},
    ) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["status"] == "queued"
        return str(body["id"])


async def looks_unknown(
    http: aiohttp.ClientSession, proc: GatewayProcess, stranger: Tenant, rid: str
) -> None:
    """Another account sees nothing of the run, whatever it asks."""
    auth = {"Authorization": f"Bearer {stranger.key}"}
    for method, suffix in (("GET", ""), ("GET", "?stream=true"), ("GET", "/input_items")):
        async with http.request(
            method, f"{proc.url}/v1/responses/{rid}{suffix}", headers=auth
        ) as r:
            text = await r.text()
            assert r.status == 404, (suffix, text)
            assert "response_not_found" in text and "lorem" not in text and "run " not in text


async def test_sigkill_mid_run_ends_each_job_exactly_once(
    redis_server, fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    redis_server.command("FLUSHALL")
    env = env_for(redis_server.url, fake.url)
    doomed = GatewayProcess({**env, "EDGE_BACKGROUND_CONCURRENCY": str(RUNNING)})
    survivor = GatewayProcess(env)
    await start(doomed)
    try:
        owner = await Live(url=doomed.url, http=http).tenant()
        stranger = await Live(url=doomed.url, http=http).tenant()
        # The first runs stream slowly (they will be cut); the ones run later answer at once.
        slow = Scenario(frames=frames("responses", 400), delay_chunks=0.05)
        quick = Scenario(frames=frames("responses", 5))
        fake.push(*([slow] * RUNNING), *([quick] * QUEUED))
        ids = [await create(http, doomed, owner.key, n) for n in range(RUNNING + QUEUED)]
        await wait_until(
            lambda: fake.open_streams >= RUNNING, "the doomed process never ran its jobs"
        )
        await asyncio.sleep(0.3)  # some events of each run are in their logs
        assert len(fake.requests) == RUNNING  # the rest wait in the queue
        for rid in ids:
            await looks_unknown(http, doomed, stranger, rid)
        await start(survivor)
        doomed.signal(signal.SIGKILL)
        killed = Stopwatch()

        async def statuses() -> dict[str, str]:
            out = {}
            for rid in ids:
                async with http.get(
                    f"{survivor.url}/v1/responses/{rid}",
                    headers={"Authorization": f"Bearer {owner.key}"},
                ) as resp:
                    assert resp.status == 200
                    out[rid] = (await resp.json())["status"]
            return out

        current = await statuses()
        deadline = Deadline(LEASE + 30)
        while {"queued", "in_progress"} & set(current.values()):
            deadline.check(current)
            await asyncio.sleep(0.1)
            current = await statuses()
        took = killed.elapsed()
        await asyncio.sleep(LEASE + 0.5)  # a second lease: nobody ends a run twice
        assert await statuses() == current
        for rid in ids:
            await looks_unknown(http, survivor, stranger, rid)
        logs = {rid: await events_of(http, survivor, owner.key, rid) for rid in ids}
    finally:
        doomed.kill()
        await stop(survivor)
    failed = [rid for rid in ids if current[rid] == "failed"]
    completed = [rid for rid in ids if current[rid] == "completed"]
    assert sorted(failed) == sorted(ids[:RUNNING]), current
    assert sorted(completed) == sorted(ids[RUNNING:]), current
    for rid, log in logs.items():
        assert [e["sequence_number"] for e in log] == list(range(len(log)))
        ends = [e for e in log if e["type"] in TERMINALS]
        assert len(ends) == 1, (rid, [e["type"] for e in log][-4:])
        if rid in failed:
            assert ends[0]["response"]["error"]["code"] == "worker_lost"
    assert len(fake.requests) == RUNNING + QUEUED  # each job reached the provider once
    assert redis_server.command("XLEN", "edge:resp:jobs").startswith(b":0")
    print(f"{RUNNING} runs failed and {QUEUED} completed {took:.1f} s after the kill")

"""Background runs whose process stops mid-run are charged what they used, on Redis with
`edge serve` processes: a run failed at the shutdown deadline, a run taken over after its
process died, and a run cancelled while its process was frozen and then killed. Each is charged
its input estimate and at least one output token per event it logged, once."""

from __future__ import annotations

import asyncio
import json
import math
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from edge.store import Store, open_store
from edge.store.usage import day_of
from policies.quota import Rules
from tests.support.clock import Deadline, wait_until
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import GatewayProcess, Live, Tenant
from tests.support.streams import frames
from tests.test_background_processes import env_for, start, stop

pytestmark = pytest.mark.timeout(90)
DELTA = "response.output_text.delta"
BYTES_PER_TOKEN = Rules().bytes_per_token  # the estimator's ratio in every shipped plan


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    yield session
    await session.close()


@pytest.fixture
async def store(redis_server) -> AsyncIterator[Store]:
    redis_server.command("FLUSHALL")
    async with open_store(redis_server.url, redis_timeout=1.0) as opened:
        yield opened


async def create(http: aiohttp.ClientSession, proc: GatewayProcess, tenant: Tenant) -> str:
    async with http.post(
        f"{proc.url}/v1/responses",
        json={"model": "gpt-5-4", "input": "tell me a long story", "background": True},
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return str(body["id"])


async def logged(store: Store, account: str, rid: str) -> list[dict[str, Any]]:
    return [json.loads(data) for _, data in await store.responses.events(account, rid, -1, 0)]


async def streaming(store: Store, tenant: Tenant, rid: str) -> None:
    """Wait until the run has logged some output."""

    async def some_output() -> bool:
        events = await logged(store, tenant.account, rid)
        return sum(e["type"] == DELTA for e in events) >= 5

    await wait_until(some_output, "the run never logged output", seconds=15)


async def ended(store: Store, account: str, rid: str, seconds: float) -> dict[str, Any]:
    deadline = Deadline(seconds)  # bounds the test's own waiting
    while True:
        record = await store.responses.get(account, rid)
        assert record is not None
        if record.terminal:
            return record.response
        deadline.check(f"the run is still {record.status}")
        await asyncio.sleep(0.05)


async def settled(store: Store, key_id: str, seconds: float = 15) -> dict[str, int]:
    """Today's usage of a key once one call was settled for it."""
    deadline = Deadline(seconds)  # bounds the test's own waiting
    while True:
        today = day_of(time.time())
        usage = (await store.usage.days(f"key:{key_id}", [today]))[today]
        if usage.get("requests", 0) >= 1:
            return usage
        deadline.check("no usage was recorded")
        await asyncio.sleep(0.05)


async def charged_for(store: Store, tenant: Tenant, rid: str, fake: FakeUpstream) -> None:
    """One settlement: the input estimate of what was sent, and a token per delta logged."""
    deltas = sum(e["type"] == DELTA for e in await logged(store, tenant.account, rid))
    usage = await settled(store, tenant.key_id)
    assert usage["requests"] == 1
    assert usage["output_tokens"] >= deltas >= 5
    assert usage["input_tokens"] == math.ceil(len(fake.requests[0].raw) / BYTES_PER_TOKEN)


def slow() -> Scenario:
    return Scenario(frames=frames("responses", 400), delay_chunks=0.05)


async def test_a_run_failed_at_shutdown_is_charged(redis_server, store, fake, http) -> None:
    env = {**env_for(redis_server.url, fake.url), "EDGE_SHUTDOWN_TIMEOUT": "1"}
    proc = GatewayProcess(env)
    await start(proc)
    try:
        tenant = await Live(url=proc.url, http=http).tenant()
        fake.push(slow())
        rid = await create(http, proc, tenant)
        await streaming(store, tenant, rid)
        proc.signal(signal.SIGTERM)
        assert proc.proc is not None
        assert await asyncio.to_thread(proc.proc.wait, 15) == 0
    finally:
        proc.kill()
    failed = await ended(store, tenant.account, rid, 5)
    assert failed["error"]["code"] == "server_shutdown"
    await charged_for(store, tenant, rid, fake)


async def test_a_run_taken_over_after_its_process_died_is_charged(
    redis_server, store, fake, http
) -> None:
    env = env_for(redis_server.url, fake.url)
    doomed, survivor = GatewayProcess(env), GatewayProcess(env)
    await start(doomed)
    try:
        tenant = await Live(url=doomed.url, http=http).tenant()
        fake.push(slow())
        rid = await create(http, doomed, tenant)
        await streaming(store, tenant, rid)
        await start(survivor)
        doomed.kill()
        failed = await ended(store, tenant.account, rid, 20)
        assert failed["error"]["code"] == "worker_lost"
        await charged_for(store, tenant, rid, fake)
    finally:
        doomed.kill()
        await stop(survivor)


async def test_a_run_cancelled_while_its_process_was_frozen_is_charged(
    redis_server, store, fake, http
) -> None:
    env = env_for(redis_server.url, fake.url)
    frozen, survivor = GatewayProcess(env), GatewayProcess(env)
    await start(frozen)
    try:
        tenant = await Live(url=frozen.url, http=http).tenant()
        fake.push(slow())
        rid = await create(http, frozen, tenant)
        await streaming(store, tenant, rid)
        await start(survivor)
        # Frozen, the running process neither hears the cancel nor settles; then it dies.
        frozen.signal(signal.SIGSTOP)
        async with http.post(
            f"{survivor.url}/v1/responses/{rid}/cancel",
            headers={"Authorization": f"Bearer {tenant.key}"},
        ) as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
        frozen.kill()
        # The survivor takes the job over once its lease has passed, and settles the run.
        await charged_for(store, tenant, rid, fake)
    finally:
        frozen.kill()
        await stop(survivor)

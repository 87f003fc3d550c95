"""Several `edge serve` processes sharing Redis: a conversation whose turns land on different
processes, a background run streamed and cancelled from other processes, and a crashed run."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from edge.quota.reservation import Reservation
from edge.store import open_store
from edge.store.responses import StoredResponse
from edge.store.responses_jobs import RedisJobs
from edge.translate.responses_object import Shell
from edge.translate.responses_request import parse_params
from tests.support.clock import Stopwatch, wait_until
from tests.support.fake_upstream import Scenario
from tests.support.gateway import GatewayProcess, Live, gateway_env
from tests.test_background import slow_frames
from tests.test_responses_chain import answer, texts
from tests.test_responses_passthrough import parse_sse

LEASE = 2.0
TERMINALS = ("response.completed", "response.failed", "response.incomplete")


def env_for(redis_url: str, fake_url: str) -> dict[str, str]:
    return gateway_env(
        redis_url,
        fake_url,
        EDGE_BACKGROUND_LEASE_SECONDS=str(LEASE),
        EDGE_SHUTDOWN_GRACE="0",  # no load balancer to wait for
    )


async def start(*procs: GatewayProcess) -> None:
    await asyncio.gather(*(asyncio.to_thread(p.start) for p in procs))


async def stop(*procs: GatewayProcess) -> None:
    await asyncio.gather(*(asyncio.to_thread(p.stop) for p in procs))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    session = aiohttp.ClientSession()
    yield session
    await session.close()


@pytest.fixture
async def trio(redis_server, fake) -> AsyncIterator[list[GatewayProcess]]:
    redis_server.command("FLUSHALL")
    procs = [GatewayProcess(env_for(redis_server.url, fake.url)) for _ in range(3)]
    await start(*procs)
    yield procs
    await stop(*procs)


def client(proc: GatewayProcess, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=key, base_url=f"{proc.url}/v1", max_retries=0)


async def events_of(
    http: aiohttp.ClientSession, proc: GatewayProcess, key: str, rid: str, after: int = -1
) -> list[dict[str, Any]]:
    """The response's event stream from one process, to its end."""
    query = "stream=true" + (f"&starting_after={after}" if after >= 0 else "")
    async with http.get(
        f"{proc.url}/v1/responses/{rid}?{query}", headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        assert resp.status == 200, await resp.text()
        raw = await resp.read()
    return [json.loads(data) for _, data in parse_sse(raw)]


async def status_of(http, proc: GatewayProcess, key: str, rid: str) -> str:
    async with http.get(
        f"{proc.url}/v1/responses/{rid}", headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["status"])


async def wait_for(check, timeout: float, what: str) -> None:
    """Poll an async check; give up after `timeout` (a bound on the test's own run time)."""
    await wait_until(check, f"timed out waiting for {what}", seconds=timeout, poll=0.05)


async def test_each_turn_on_another_process(trio, fake, http) -> None:
    tenant = await Live(url=trio[0].url, http=http).tenant()
    fake.push(
        Scenario(body=answer("resp_p1", "first answer")),
        Scenario(body=answer("resp_p2", "second answer")),
        Scenario(body=answer("resp_p3", "third answer")),
    )
    clients = [client(p, tenant.key) for p in trio]
    try:
        one = await clients[0].responses.create(model="gpt-5-4", input="turn one")
        two = await clients[1].responses.create(
            model="gpt-5-4", input="turn two", previous_response_id=one.id
        )
        three = await clients[2].responses.create(
            model="gpt-5-4", input="turn three", previous_response_id=two.id
        )
    finally:
        for sdk in clients:
            await sdk.close()
    assert three.output_text == "third answer"
    sent = fake.requests[-1].body["input"]
    assert texts(sent) == [
        "turn one",
        "first answer",
        "turn two",
        "second answer",
        "turn three",
    ]


async def test_stream_from_b_and_cancel_from_a(trio, fake, http) -> None:
    a, b, c = trio
    tenant = await Live(url=a.url, http=http).tenant()
    fake.push(Scenario(frames=slow_frames(), delay_chunks=0.1))
    sdk = client(a, tenant.key)
    try:
        rid = (await sdk.responses.create(model="gpt-5-4", input="long", background=True)).id

        async def running() -> bool:
            return await status_of(http, c, tenant.key, rid) == "in_progress"

        await wait_for(running, 10, "the run to start")
        follower = asyncio.create_task(events_of(http, b, tenant.key, rid, after=3))

        async def some_deltas() -> bool:
            async with http.get(
                f"{c.url}/v1/responses/{rid}?stream=true&starting_after=8",
                headers={"Authorization": f"Bearer {tenant.key}"},
                timeout=aiohttp.ClientTimeout(total=0.5),
            ) as resp:
                try:
                    return bool(await resp.content.readany())
                except TimeoutError:
                    return False

        await wait_for(some_deltas, 10, "events in the log")
        cancelled = await sdk.responses.cancel(rid)
        assert cancelled.status == "cancelled"
        seen = await asyncio.wait_for(follower, 10)
    finally:
        await sdk.close()
    # B saw the terminal event, and exactly the log after its starting point.
    assert seen[-1]["type"] == "response.incomplete"
    assert seen[-1]["response"]["status"] == "cancelled"
    whole = await events_of(http, c, tenant.key, rid)
    assert [e["sequence_number"] for e in whole] == list(range(len(whole)))
    assert seen == whole[4:]
    assert len(whole) < len(slow_frames())

    async def upstream_closed() -> bool:
        return fake.open_streams == 0

    await wait_for(upstream_closed, 5, "the provider stream to close")


async def test_a_killed_worker_ends_its_run_exactly_once(redis_server, fake, http) -> None:
    redis_server.command("FLUSHALL")
    env = env_for(redis_server.url, fake.url)
    a, b = GatewayProcess(env), GatewayProcess(env)
    await start(a)
    try:
        tenant = await Live(url=a.url, http=http).tenant()
        fake.push(Scenario(frames=slow_frames(), delay_chunks=0.1))
        sdk = client(a, tenant.key)
        rid = (await sdk.responses.create(model="gpt-5-4", input="long", background=True)).id
        await sdk.close()

        async def started() -> bool:
            return fake.open_streams > 0

        await wait_for(started, 10, "A to run the job")
        await start(b)  # B exists before A dies, and never ran the job
        a.signal(signal.SIGKILL)
        killed = Stopwatch()

        async def ended() -> bool:
            return await status_of(http, b, tenant.key, rid) not in ("queued", "in_progress")

        # B ends it once A's lease has passed (worker_lost, below); how soon is a figure.
        await wait_for(ended, LEASE + 30, "a terminal status")
        print(f"run ended by B {killed.elapsed():.1f} s after A was killed (lease {LEASE} s)")
        assert await status_of(http, b, tenant.key, rid) == "failed"
        log = await events_of(http, b, tenant.key, rid)
        terminal = [e for e in log if e["type"] in TERMINALS]
        assert len(terminal) == 1 and terminal[0]["type"] == "response.failed"
        assert terminal[0]["response"]["error"]["code"] == "worker_lost"
        assert [e["sequence_number"] for e in log] == list(range(len(log)))
        # The job left the queue: nobody will run it again.

        async def dequeued() -> bool:
            return redis_server.command("XLEN", "edge:resp:jobs").startswith(b":0")

        await wait_for(dequeued, 5, "the job to leave the queue")
    finally:
        a.kill()
        await stop(b)


async def test_a_job_claimed_by_a_dead_process_before_it_started_is_run(
    redis_server, fake, http
) -> None:
    """Nothing of the run happened yet, so it is simply run by the process that takes it over."""
    redis_server.command("FLUSHALL")
    account = f"acct_{secrets.token_hex(4)}"
    rid = f"resp_{secrets.token_hex(6)}"
    params = parse_params({"model": "local/echo", "input": "late", "background": True})
    shell = Shell(rid, "local/echo", params, int(time.time()), background=True)
    items = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "late"}]}
    ]
    record = StoredResponse(
        id=rid,
        account=account,
        response=shell.render("queued"),
        input_items=items,
        status="queued",
        background=True,
        branch="br-main",  # made on the tenant key's branch, which alone reads it back
        job={
            "params": params.to_json(),
            "model": "local/echo",
            "items": items,
            # Queued by an admitted call: the run is called with its reservation.
            "reservation": Reservation(f"r_{rid}", account, None, "local/echo").to_json(),
        },
    )
    async with open_store(redis_server.url, redis_timeout=1.0) as store:
        assert store.redis is not None
        await store.responses.create(record, ttl=600)
        dead = RedisJobs(store.redis, store.redis)
        await dead.push(account, rid)
        assert await dead.take(1.0, lease=LEASE) is not None  # ...and the process dies here
    proc = GatewayProcess(env_for(redis_server.url, fake.url))
    await start(proc)
    try:
        tenant = await Live(url=proc.url, http=http).tenant(account=account)

        async def done() -> bool:
            return await status_of(http, proc, tenant.key, rid) == "completed"

        await wait_for(done, LEASE + 5, "the taken-over run to complete")
        log = await events_of(http, proc, tenant.key, rid)
        assert [e["type"] for e in log][-1] == "response.completed"
        assert sum(e["type"] in TERMINALS for e in log) == 1
    finally:
        await stop(proc)


async def test_sigterm_fails_a_run_that_cannot_finish_in_time(redis_server, fake, http) -> None:
    """A draining process takes no new job and waits for its runs until the shutdown deadline;
    what is still running then ends `failed` at once, not a lease later."""
    redis_server.command("FLUSHALL")
    env = {**env_for(redis_server.url, fake.url), "EDGE_SHUTDOWN_TIMEOUT": "1"}
    a = GatewayProcess(env)
    await start(a)
    try:
        tenant = await Live(url=a.url, http=http).tenant()
        fake.push(Scenario(frames=slow_frames(), delay_chunks=0.1))
        sdk = client(a, tenant.key)
        rid = (await sdk.responses.create(model="gpt-5-4", input="long", background=True)).id
        await sdk.close()

        async def started() -> bool:
            return fake.open_streams > 0

        await wait_for(started, 10, "A to run the job")
        a.signal(signal.SIGTERM)
        assert await asyncio.to_thread(a.proc.wait, 15) == 0
    finally:
        a.kill()
    async with open_store(redis_server.url, redis_timeout=1.0) as store:
        record = await store.responses.get(tenant.account, rid)
        assert record is not None and record.status == "failed"
        assert record.response["error"]["code"] == "server_shutdown"
        log = await store.responses.events(tenant.account, rid, -1, 0)
        assert [json.loads(data)["type"] for _, data in log][-2:] == ["error", "response.failed"]
    assert redis_server.command("XLEN", "edge:resp:jobs").startswith(b":0")


async def test_sigterm_requeues_a_run_that_has_logged_nothing(redis_server, fake, http) -> None:
    """At the shutdown deadline a run still waiting for its provider's first event goes back to
    the queue, and another process runs it to completion at once, not a lease later."""
    redis_server.command("FLUSHALL")
    env = {**env_for(redis_server.url, fake.url), "EDGE_SHUTDOWN_TIMEOUT": "1"}
    # A lease of a minute: a takeover after the lease would come too late to pass.
    env |= {"EDGE_LOG_LEVEL": "INFO", "EDGE_BACKGROUND_LEASE_SECONDS": "60"}
    a, b = GatewayProcess(env), GatewayProcess(env)
    await start(a)
    try:
        tenant = await Live(url=a.url, http=http).tenant()
        # A's provider call answers nothing for a minute; B's, made after the requeue, at once.
        fake.push(Scenario(frames=slow_frames(), delay_headers=60), Scenario(frames=slow_frames()))
        sdk = client(a, tenant.key)
        rid = (await sdk.responses.create(model="gpt-5-4", input="long", background=True)).id
        await sdk.close()

        async def called() -> bool:
            return len(fake.requests) == 1

        await wait_for(called, 10, "A to call the provider")
        await start(b)
        a.signal(signal.SIGTERM)
        signalled = Stopwatch()
        assert await asyncio.to_thread(a.proc.wait, 15) == 0

        async def completed() -> bool:
            return await status_of(http, b, tenant.key, rid) == "completed"

        # Requeued by A as it stopped (its log says so, below), not recovered when the 60 s
        # lease passes: this wait gives up long before that.
        await wait_for(completed, 30, "B to run the requeued job")
        took = signalled.elapsed()
        print(f"requeued run completed elsewhere {took:.1f} s after SIGTERM (timeout 1 s)")
        log = await events_of(http, b, tenant.key, rid)
    finally:
        a.kill()
        await stop(b)
    assert len(fake.requests) == 2 and fake.requests[0].disconnected_at is not None
    assert '"msg":"background run requeued"' in a.log.read_text()
    kinds = [e["type"] for e in log]
    lifecycle = ["response.created", "response.queued", "response.in_progress"]
    assert kinds[:5] == [*lifecycle, "response.queued", "response.in_progress"], kinds
    assert sum(k in TERMINALS for k in kinds) == 1 and kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in log] == list(range(len(log)))
    assert redis_server.command("XLEN", "edge:resp:jobs").startswith(b":0")

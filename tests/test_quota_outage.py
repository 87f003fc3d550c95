"""Redis SIGKILLed under load and restarted: request-rate limits fall back to each replica's
share, budgets fail closed with 503, nothing answers 500, and the shared limits come back on
both replicas after the restart. How long a call waits on a dead Redis, and how soon the
limits are back, are printed figures here; tests/soak/test_redis_faults_soak.py holds both to
their bounds (the slowest call within one Redis timeout per step, recovery within 5 s)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
import pytest

from tests.support.clock import stamp, wait_until
from tests.support.gateway import GatewayProcess, gateway_env
from tests.support.redis_server import RedisServer
from tests.test_quota_replicas import Pair
from tests.test_quota_support import chat_body

pytestmark = pytest.mark.timeout(120)
REDIS_TIMEOUT = 0.1
CLIENTS = 16
RECOVERED = 20  # budget calls in a row admitted on each replica: the shared limits are back


@dataclass
class Call:
    """One timed model call: when it ended, whose it was, where it went, what it got, and
    when it began (instants to order calls with the kill and the restart; `latency` is a
    figure, held to a bound only in tests/soak)."""

    at: float
    tenant: str
    replica: int
    status: int
    latency: float
    retry_after: str | None
    began: float = 0.0


async def timed_call(
    http: aiohttp.ClientSession, pair: Pair, replica: int, tenant: str, key: str
) -> Call:
    """One Chat Completions call to a replica, timed from the client's side."""
    start = stamp()
    async with http.post(
        f"{pair.urls[replica]}/v1/chat/completions",
        json=chat_body(),
        headers={"Authorization": f"Bearer {key}"},
    ) as resp:
        await resp.read()
        end = stamp()
        retry_after = resp.headers.get("Retry-After")
        return Call(end, tenant, replica, resp.status, end - start, retry_after, began=start)


async def test_redis_killed_under_load_then_restarted() -> None:
    server = RedisServer().start()
    env = gateway_env(
        server.url,
        None,
        EDGE_REDIS_TIMEOUT=str(REDIS_TIMEOUT),
        EDGE_EXPECTED_REPLICAS="2",
        EDGE_SHUTDOWN_GRACE="0",
    )
    procs = [GatewayProcess(env), GatewayProcess(env)]
    calls: list[Call] = []
    try:
        for proc in procs:
            await asyncio.to_thread(proc.start)
        async with aiohttp.ClientSession() as http:
            pair = Pair([p.url for p in procs], http)
            _, rate_key = await pair.tenant({"requests_per_minute": 100_000})
            _, budget_key = await pair.tenant({"tokens_per_day": 10**9})
            server.command("SAVE")  # the restarted server comes back with these records
            stop = asyncio.Event()

            async def client(n: int) -> None:
                i = 0
                while not stop.is_set():
                    tenant, key = ("rate", rate_key) if i % 2 else ("budget", budget_key)
                    calls.append(await timed_call(http, pair, (n + i) % 2, tenant, key))
                    i += 1
                    await asyncio.sleep(0.005)

            def recovered() -> bool:
                """Each replica's last RECOVERED budget calls, begun after the restart, were
                admitted."""
                for replica in (0, 1):
                    later = [
                        c
                        for c in calls
                        if c.tenant == "budget" and c.replica == replica and c.began > restarted
                    ]
                    if len(later) < RECOVERED or any(c.status != 200 for c in later[-RECOVERED:]):
                        return False
                return True

            tasks = [asyncio.create_task(client(n)) for n in range(CLIENTS)]
            await asyncio.sleep(1.0)
            await asyncio.to_thread(server.kill)
            killed = stamp()
            await asyncio.sleep(2.0)
            # The restarted server answers the gateways before start() has seen it ready, so
            # the outage ends when the restart begins, and recovery is timed from its end.
            restarting = stamp()
            await asyncio.to_thread(server.start)
            restarted = stamp()
            try:
                await wait_until(recovered, "the shared limits never came back", seconds=60)
            finally:
                stop.set()
                await asyncio.gather(*tasks)
    finally:
        await asyncio.gather(*(asyncio.to_thread(proc.stop) for proc in procs))
        server.stop()

    assert calls
    assert {c.status for c in calls} <= {200, 503}, {c.status for c in calls}
    # Calls made wholly while Redis was dead: begun after the kill, ended before the restart.
    outage = [c for c in calls if killed < c.began and c.at < restarting]
    assert outage
    # Request-rate limits: decided by each replica's share (ample here): admitted.
    assert {c.status for c in outage if c.tenant == "rate"} == {200}
    # Token budgets: fail closed, with a Retry-After.
    budget_outage = [c for c in outage if c.tenant == "budget"]
    assert {c.status for c in budget_outage} == {503}
    assert all(c.retry_after == "1" for c in budget_outage)
    slowest = max(c.latency for c in calls if killed < c.at < restarted + 0.5)
    # Recovery: from some moment after the restart, every budget call is admitted again on
    # both replicas.
    after = [c for c in calls if c.began > restarted and c.tenant == "budget"]
    last_refusal = max((c.at for c in after if c.status != 200), default=restarted)
    recovery = last_refusal - restarted
    assert {c.replica for c in after if c.began > last_refusal and c.status == 200} == {0, 1}
    print(
        f"calls={len(calls)} outage={len(outage)} slowest={slowest * 1000:.0f} ms "
        f"recovery={recovery:.2f} s"
    )

"""Quota exactness under two gateway processes and a hundred concurrent clients, run after run,
and across a Redis restart: a token budget and a concurrency limit are never exceeded, and every
reservation is settled or expires. (The 20-run version is in tests/soak; request-rate exactness
over ten runs is in test_quota_replicas.py.)"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import pytest

from tests.support.clock import Deadline
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import GatewayProcess, gateway_env
from tests.support.redis_server import RedisServer
from tests.test_quota_replicas import Pair, _usage_body
from tests.test_quota_support import chat_body

pytestmark = pytest.mark.timeout(240)
CLIENTS = 100
CALLS = 12  # at most, each: far more than the budget admits
BUDGET = 4000  # tokens per day
CONCURRENT = 20
USAGE = (10, 40)  # what the provider reports for every call
RESERVATION_TTL = 3.0
T = TypeVar("T")


OPEN_MARKERS = """local n = 0
for _, k in ipairs(redis.call('KEYS', '*:res:*')) do
  if redis.call('GET', k) ~= 'settled' then n = n + 1 end
end
return n"""


def count_open_markers(server: RedisServer) -> int:
    """Reservation markers not yet settled (an integer reply is `:<n>`)."""
    reply = server.command("EVAL", OPEN_MARKERS, "0")
    assert reply.startswith(b":"), reply
    return int(reply[1 : reply.index(b"\r")])


@dataclass
class Run:
    """What one run admitted, and what the store held afterwards."""

    statuses: list[int]
    served: int  # calls the provider answered
    peak_concurrent: int
    used: int  # the budget counter, once settled or expired
    recorded: int  # tokens in the usage records
    markers: int  # reservations still open in Redis (settled ones keep a 'settled' marker)
    in_flight: int

    @property
    def admitted_tokens(self) -> int:
        return self.served * sum(USAGE)


@pytest.fixture
async def pair(fake: FakeUpstream) -> AsyncIterator[tuple[Pair, RedisServer]]:
    server = RedisServer().start()
    env = gateway_env(
        server.url,
        fake.url,
        # Two gateways and a hundred clients on two cores: a tight client timeout would fire
        # because event loops are busy, not because Redis is slow (see test_quota_replicas.py).
        EDGE_REDIS_TIMEOUT="0.5",
        EDGE_RESERVATION_TTL=str(RESERVATION_TTL),
    )
    procs = [GatewayProcess(env), GatewayProcess(env)]
    try:
        for proc in procs:
            await asyncio.to_thread(proc.start)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CLIENTS + 10)
        ) as http:
            yield Pair([p.url for p in procs], http), server
    finally:
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in procs))
        server.stop()


async def admin_retrying(call: Callable[[], Awaitable[T]]) -> T:
    """An admin call, retried while it answers 503: after a Redis restart each pooled connection
    Redis closed fails once (503 store_unavailable, Retry-After: 1), as an admin client sees."""
    for _ in range(50):
        try:
            result = await call()
        except AssertionError:  # Pair.tenant asserts each step's status
            await asyncio.sleep(0.1)
            continue
        if not (isinstance(result, tuple) and result[0] == 503):
            return result
        await asyncio.sleep(0.1)
    raise AssertionError("the admin API kept answering 503")


async def one_run(
    pair: Pair, server: RedisServer, fake: FakeUpstream, restart_at: float | None = None
) -> Run:
    """A fresh key, 100 clients calling it through both replicas; Redis restarted `restart_at`
    seconds in, if given."""
    key_id, key = await admin_retrying(
        lambda: pair.tenant({"tokens_per_day": BUDGET, "max_concurrent": CONCURRENT})
    )
    server.command("SAVE")  # the key survives even an unclean stop
    fake.requests.clear()
    fake.peak_active = 0
    fake.default = Scenario(body=_usage_body(*USAGE), delay_headers=0.02)
    body = chat_body("count me", max_tokens=40, model="gpt-5-4-nano")
    rng = random.Random(len(fake.requests))

    async def call(replica: int) -> tuple[int, str]:
        async with pair.http.post(
            f"{pair.urls[replica]}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        ) as resp:
            await resp.read()
            return resp.status, resp.headers.get("RateLimit-Policy", "")

    async def client(n: int) -> list[int]:
        # Calls until the budget refuses (refusals by the concurrency limit do not stop it).
        out = []
        for i in range(CALLS):
            await asyncio.sleep(rng.uniform(0, 0.05))
            status, policy = await call((n + i) % 2)
            out.append(status)
            if status == 429 and policy.startswith('"key-tpd"'):
                break
        return out

    calls = asyncio.gather(*(client(n) for n in range(CLIENTS)))
    if restart_at is not None:
        await asyncio.sleep(restart_at)
        await asyncio.to_thread(server.restart)
    statuses = [s for r in await calls for s in r]
    # Everything held is given back, or expires with the reservation.
    deadline = Deadline(RESERVATION_TTL + 10)
    while True:
        status, usage = await admin_retrying(lambda: pair.admin("GET", f"/keys/{key_id}/usage"))
        assert status == 200, usage
        markers = count_open_markers(server)
        if (markers == 0 and usage["in_flight"] == 0) or deadline.passed():
            break
        await asyncio.sleep(0.1)
    today = usage["today"]
    return Run(
        statuses=statuses,
        served=len(fake.requests),
        peak_concurrent=fake.peak_active,
        used=next(r["used"] for r in usage["limits"] if r["name"] == "tokens_per_day"),
        recorded=today["input_tokens"] + today["output_tokens"],
        markers=markers,
        in_flight=usage["in_flight"],
    )


def check(run: Run, restarted: bool) -> None:
    """The invariants of one run."""
    assert set(run.statuses) <= {200, 429, 503}, sorted(set(run.statuses))
    assert run.served == run.statuses.count(200)
    assert run.statuses.count(429) > 0  # the budget did run out
    assert run.admitted_tokens <= BUDGET, run
    assert run.peak_concurrent <= CONCURRENT, run
    assert run.markers == 0 and run.in_flight == 0, run
    if restarted:
        # Settlements lost while Redis was away leave their holds charged: over, never under.
        assert run.used >= run.recorded, run
    else:
        assert 503 not in run.statuses
        assert run.used == run.recorded == run.admitted_tokens, run
        # Exact, not merely safe: the last admitted call left less than one call's estimate.
        assert BUDGET - run.used < 2 * (sum(USAGE) + 100), run


async def test_token_budget_and_concurrency_exact_run_after_run(
    pair: tuple[Pair, RedisServer], fake: FakeUpstream
) -> None:
    replicas, server = pair
    runs = []
    for _ in range(3):
        runs.append(await one_run(replicas, server, fake))
        check(runs[-1], restarted=False)
    runs.append(await one_run(replicas, server, fake, restart_at=0.3))
    check(runs[-1], restarted=True)
    for run in runs:
        print(
            f"admitted {run.statuses.count(200)}/{len(run.statuses)} "
            f"({run.admitted_tokens}/{BUDGET} tokens), peak {run.peak_concurrent}/{CONCURRENT} "
            f"concurrent, 503s {run.statuses.count(503)}, counter {run.used}"
        )

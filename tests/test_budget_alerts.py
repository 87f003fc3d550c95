"""Budget alerts: a budget crossing a threshold fires exactly one signed webhook across two
replicas (claimed in Redis), retried when the receiver fails, and `edge_budget_used_ratio`
reports the budget's use."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from policies.budget_alerts import SIGNATURE_HEADER, reached, signature, verify
from tests.support.clock import wait_until
from tests.support.gateway import ADMIN_TOKEN, GatewayProcess, Live, gateway_env
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer

SECRET = "alert-secret-0123456789abcdef0123456789"
WORDS = "one two three four five six seven eight nine ten"  # 10 tokens in, 11 out


def test_thresholds_and_signatures() -> None:
    assert reached(799, 1000, (0.5, 0.8, 1.0)) == [0.5]
    assert reached(800, 1000, (0.5, 0.8, 1.0)) == [0.5, 0.8]
    assert reached(5, 0, (0.5,)) == []
    body = b'{"budget":"tokens_per_day"}'
    now = time.time()
    header = signature(SECRET.encode(), int(now), body)
    assert verify(SECRET.encode(), header, body, now)
    assert not verify(SECRET.encode(), header, body + b" ", now)  # tampered
    assert not verify(b"another-secret", header, body, now)  # forged
    assert not verify(SECRET.encode(), header, body, now + 3600)  # replayed later
    assert not verify(SECRET.encode(), "v1=abc", body, now)


class Receiver:
    """A webhook endpoint that verifies each delivery; fails the first `failures` of them."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.refused: list[str] = []  # delivery ids answered 503
        self.deliveries: list[dict[str, Any]] = []
        self.attempts: list[str] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        assert verify(SECRET.encode(), request.headers[SIGNATURE_HEADER], body, time.time())
        self.attempts.append(request.headers["Edge-Delivery"])
        if self.failures:
            self.failures -= 1
            self.refused.append(request.headers["Edge-Delivery"])
            return web.Response(status=503)
        self.deliveries.append(orjson.loads(body))
        return web.Response(status=204)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/hook"
        return self


@pytest.fixture
async def receiver(request: pytest.FixtureRequest) -> AsyncIterator[Receiver]:
    found = await Receiver(getattr(request, "param", 0)).start()
    yield found
    assert found.runner is not None
    await found.runner.cleanup()


async def _call(http: aiohttp.ClientSession, url: str, key: str) -> int:
    message = {"role": "user", "content": WORDS}
    body = {"model": "local/echo", "max_tokens": 16, "messages": [message]}
    async with http.post(
        f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        await resp.read()
        return resp.status


def _settled(live: Live, calls: int) -> Callable[[], Awaitable[bool]]:
    """A check that the account's usage shows `calls` calls (each written as it settles)."""

    async def check() -> bool:
        status, usage = await live.admin("GET", "/accounts/acct_alerts/usage")
        return bool(status == 200 and usage["today"]["requests"] >= calls)

    return check


@pytest.mark.parametrize("receiver", [0, 1], indirect=True, ids=["first-try", "after-a-503"])
async def test_a_crossing_fires_one_signed_webhook_across_two_replicas(
    redis_server: RedisServer, receiver: Receiver
) -> None:
    redis_server.command("FLUSHALL")
    env = gateway_env(
        redis_server.url,
        None,
        EDGE_ALERT_WEBHOOK_URL=receiver.url,
        EDGE_ALERT_WEBHOOK_SECRET=SECRET,
    )
    replicas = [GatewayProcess(env).start(), GatewayProcess(env).start()]
    try:
        async with aiohttp.ClientSession() as http:
            live = Live(url=replicas[0].url, http=http)
            tenant = await live.tenant(account="acct_alerts")
            budget = {"tokens_per_day": 1000, "alert_thresholds": [0.5, 0.8]}
            status, _ = await live.admin("PUT", "/accounts/acct_alerts/quota", budget)
            assert status == 200
            # 21 tokens a call (10 in, 11 out), alternating replicas: 80 % is crossed on the 39th
            # call, and the five calls after it, on both replicas, must not fire it again (a
            # 45th would not fit). Each call is settled before the next: a call's estimate is
            # held until then, and two held at once would not fit near the end.
            for n in range(44):
                assert await _call(http, replicas[n % 2].url, tenant.key) == 200
                await wait_until(_settled(live, n + 1), f"call {n + 1} settled", seconds=10)
            await wait_until(
                lambda: len(receiver.deliveries) >= 2, "both thresholds delivered", seconds=30
            )
            async with http.get(
                f"{replicas[1].url}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            ) as resp:
                text = await resp.text()
    finally:
        for proc in replicas:
            proc.stop()
    thresholds = sorted(d["threshold"] for d in receiver.deliveries)
    assert thresholds == [0.5, 0.8], receiver.deliveries
    eighty = next(d for d in receiver.deliveries if d["threshold"] == 0.8)
    assert eighty["account"] == "acct_alerts" and eighty["budget"] == "tokens_per_day"
    assert eighty["scope"] == "account" and eighty["unit"] == "tokens"
    assert 800 <= eighty["used"] < 1000 and eighty["limit"] == 1000
    # A refused delivery is retried with the same id; a delivered one never repeats.
    delivered = [d["id"] for d in receiver.deliveries]
    assert len(set(delivered)) == 2
    assert set(receiver.refused) <= set(delivered)
    assert len(receiver.attempts) == 2 + len(receiver.refused)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    ratios = [
        s.value
        for s in families["edge_budget_used_ratio"].samples
        if s.labels.get("account") == "acct_alerts" and s.labels.get("budget") == "tokens_per_day"
    ]
    assert ratios and 0.8 <= max(ratios) < 1.0


async def test_a_weekly_budget_in_a_time_zone_is_enforced(gateway: Live) -> None:
    tenant = await gateway.tenant(quota={"tokens_per_week": 30, "budget_timezone": "Asia/Tokyo"})
    assert gateway.http is not None
    message = {"role": "user", "content": WORDS}
    body = {"model": "local/echo", "max_tokens": 64, "messages": [message]}
    async with gateway.http.post(
        f"{gateway.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as resp:
        answer = await resp.json()
        assert resp.status == 429, answer
        assert "tokens per week" in answer["error"]["message"]
        assert resp.headers["RateLimit-Policy"].startswith('"key-tpw";q=30;w=604800')

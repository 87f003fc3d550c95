"""One model, three deployments behind the fake provider: weights hold, a rate-limited
deployment is left alone by every replica until its Retry-After has passed, and a deployment
that resets connections is retried before the first byte (one charge), never after."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.support.clock import Deadline
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import (
    GatewayProcess,
    Live,
    Tenant,
    gateway_env,
    settings_for,
    start_live,
    stop_live,
)
from tests.support.recordings import recordings
from tests.support.redis_server import RedisServer
from tests.test_responses_passthrough import BY_NAME, frames_of

CHAT = {r.name: r for r in recordings("openai-chat")}
WHOLE, STREAMED = CHAT["openai-text.json"], CHAT["openai-text.chunks.txt"]
NAMES = ("a", "b", "c")
LIMITED = b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit"}}'


def catalog(fake_url: str, weights: tuple[int, ...], priorities: tuple[int, ...]) -> str:
    """Three providers on their own paths of the fake, and one model deployed on all three."""
    out = []
    for name in NAMES:
        out.append(
            f'[catalog.providers.dep-{name}]\nkind = "openai"\napis = ["chat", "responses"]\n'
            f'base_url = "{fake_url}/{name}/v1"\napi_key = "sk-{name}"\n'
        )
    deps = ", ".join(
        f'{{ provider = "dep-{n}", name = "{n}", weight = {w}, priority = {p} }}'
        for n, w, p in zip(NAMES, weights, priorities, strict=True)
    )
    out.append(f'[[catalog.models]]\nid = "spread"\nupstream = "gpt-x"\ndeployments = [{deps}]\n')
    return "\n".join(out)


def hits(fake: FakeUpstream) -> Counter[str]:
    """Requests the fake received, per deployment (its path's first segment)."""
    return Counter(r.path.split("/")[1] for r in fake.requests)


def answer_all(fake: FakeUpstream, stream: bool = False) -> None:
    for name in NAMES:
        fake.by_path[f"/{name}/v1/chat/completions"] = Scenario(
            recording=STREAMED if stream else WHOLE
        )


async def chat(
    http: aiohttp.ClientSession, url: str, key: str, stream: bool = False
) -> tuple[int, bytes]:
    body: dict[str, Any] = {"model": "spread", "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    async with http.post(
        f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        return resp.status, await resp.read()


async def gateway_with(
    fake: FakeUpstream, tmp_path: Path, weights: tuple[int, ...], priorities: tuple[int, ...]
) -> Live:
    config = tmp_path / "edge.toml"
    config.write_text(catalog(fake.url, weights, priorities))
    return await start_live(settings_for(gateway_env("memory://", None, EDGE_CONFIG=str(config))))


@pytest.fixture
async def weighted(fake: FakeUpstream, tmp_path: Path) -> AsyncIterator[Live]:
    live = await gateway_with(fake, tmp_path, (1, 2, 3), (0, 0, 0))
    yield live
    await stop_live(live)


@pytest.fixture
async def preferred(fake: FakeUpstream, tmp_path: Path) -> AsyncIterator[Live]:
    """`a` alone in the first tier: every call tries it first while it is healthy."""
    live = await gateway_with(fake, tmp_path, (1, 1, 1), (0, 1, 1))
    yield live
    await stop_live(live)


async def usage_of(live: Live, tenant: Tenant, requests: int) -> dict[str, Any]:
    """The key's usage today once `requests` calls have settled (or what it is at the end)."""
    deadline = Deadline(10)
    while True:
        status, body = await live.admin("GET", f"/keys/{tenant.key_id}/usage")
        assert status == 200
        today: dict[str, Any] = body["today"]
        if today["requests"] >= requests or deadline.passed():
            return today
        await asyncio.sleep(0.02)


async def test_weights_hold_within_5_percent_over_3000_calls(
    weighted: Live, fake: FakeUpstream
) -> None:
    answer_all(fake)
    tenant = await weighted.tenant()
    assert weighted.http is not None
    http, lanes, calls = weighted.http, 8, 3000

    async def lane() -> list[int]:
        return [(await chat(http, weighted.url, tenant.key))[0] for _ in range(calls // lanes)]

    statuses = [s for part in await asyncio.gather(*(lane() for _ in range(lanes))) for s in part]
    assert statuses == [200] * calls
    seen = hits(fake)
    print(f"3000 calls over weights 1:2:3: {dict(seen)}")
    for name, weight in zip(NAMES, (1, 2, 3), strict=True):
        expected = calls * weight / 6
        assert abs(seen[name] - expected) <= 0.05 * expected, (name, seen)


async def test_a_reset_before_the_first_byte_is_retried_and_charged_once(
    preferred: Live, fake: FakeUpstream
) -> None:
    answer_all(fake)
    fake.by_path["/a/v1/chat/completions"] = Scenario(reset_before=True)
    tenant = await preferred.tenant()
    assert preferred.http is not None
    status, raw = await chat(preferred.http, preferred.url, tenant.key)
    assert status == 200, raw
    assert fake.requests[0].path.startswith("/a/")
    assert sum(hits(fake).values()) == 2  # the reset one, then one of its peers
    usage = WHOLE.body()["usage"]
    today = await usage_of(preferred, tenant, 1)
    assert today["requests"] == 1
    assert (today["input_tokens"], today["output_tokens"]) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    # The reset deployment cools down: the next call goes straight to a peer.
    assert (await chat(preferred.http, preferred.url, tenant.key))[0] == 200
    assert hits(fake)["a"] == 1


async def test_a_reset_after_the_first_byte_ends_the_stream_and_is_not_retried(
    preferred: Live, fake: FakeUpstream
) -> None:
    answer_all(fake, stream=True)
    fake.by_path["/a/v1/chat/completions"] = Scenario(recording=STREAMED, reset_after=2)
    tenant = await preferred.tenant()
    assert preferred.http is not None
    status, raw = await chat(preferred.http, preferred.url, tenant.key, stream=True)
    assert status == 200
    events = [e for e in raw.split(b"\n\n") if e.strip()]
    assert b'"error"' in events[-1], events[-1]  # the API's terminal error event
    assert b"[DONE]" not in raw
    assert dict(hits(fake)) == {"a": 1}  # never retried once bytes had gone out
    today = await usage_of(preferred, tenant, 1)
    assert today["requests"] == 1


async def test_one_tenants_5xx_never_cools_a_deployment_for_the_others(
    preferred: Live, fake: FakeUpstream
) -> None:
    """A tenant whose own requests make a deployment fail (a provider's 5xx on an odd input)
    is retried on a peer, but cannot take that deployment from every tenant: only a second
    account's failure there cools it down."""
    answer_all(fake)
    fake.by_path["/a/v1/chat/completions"] = Scenario(status=500, body=b'{"error":{}}')
    assert preferred.http is not None
    first, second = await preferred.tenant(), await preferred.tenant()
    for n in (1, 2, 3):  # the first tenant alone: `a` is tried (first tier) and fails each time
        assert (await chat(preferred.http, preferred.url, first.key))[0] == 200
        assert hits(fake)["a"] == n
    assert (await chat(preferred.http, preferred.url, second.key))[0] == 200
    assert hits(fake)["a"] == 4  # a second account's failure: now it is the deployment's
    for tenant in (first, second):
        assert (await chat(preferred.http, preferred.url, tenant.key))[0] == 200
    assert hits(fake)["a"] == 4  # cooled down for everyone


@pytest.fixture
async def second_tier_first(fake: FakeUpstream, tmp_path: Path) -> AsyncIterator[Live]:
    """`a`, declared first, in the second tier: calls go to `b` or `c` while they are healthy."""
    live = await gateway_with(fake, tmp_path, (1, 1, 1), (1, 0, 0))
    yield live
    await stop_live(live)


async def test_a_background_run_goes_to_the_deployment_it_was_queued_for(
    second_tier_first: Live, fake: FakeUpstream
) -> None:
    """The queued body names the chosen deployment's model; the worker that takes the run up
    later sends it there, not to the model's first-declared deployment."""
    frames = frames_of(BY_NAME["lmstudio-basic.1.chunks.txt"])
    for name in NAMES:
        fake.by_path[f"/{name}/v1/responses"] = Scenario(frames=frames)
    tenant = await second_tier_first.tenant()
    live = second_tier_first
    assert live.http is not None
    headers = {"Authorization": f"Bearer {tenant.key}"}
    body = {"model": "spread", "input": "in the background", "background": True}
    async with live.http.post(f"{live.url}/v1/responses", json=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        queued = await resp.json()
    deadline = Deadline(10)
    while True:
        async with live.http.get(f"{live.url}/v1/responses/{queued['id']}", headers=headers) as r:
            record = await r.json()
        if record["status"] not in ("queued", "in_progress") or deadline.passed():
            break
        await asyncio.sleep(0.02)
    assert record["status"] == "completed", record
    assert hits(fake)["a"] == 0 and sum(hits(fake).values()) == 1, hits(fake)


async def test_a_429_is_skipped_by_both_replicas_then_used_again(
    redis_server: RedisServer, fake: FakeUpstream, tmp_path: Path
) -> None:
    redis_server.command("FLUSHALL")
    config = tmp_path / "edge.toml"
    # `a` carries 3/5 of the weight: each replica's first pick, and every other one after.
    config.write_text(catalog(fake.url, (3, 1, 1), (0, 0, 0)))
    env = gateway_env(redis_server.url, None, EDGE_CONFIG=str(config))
    one, two = GatewayProcess(env), GatewayProcess(env)
    await asyncio.gather(asyncio.to_thread(one.start), asyncio.to_thread(two.start))
    try:
        async with aiohttp.ClientSession() as http:
            tenant = await Live(url=one.url, http=http).tenant()
            answer_all(fake)
            fake.by_path["/a/v1/chat/completions"] = Scenario(
                status=429, body=LIMITED, headers={"retry-after": "2"}
            )
            # The first call on `one` goes to `a`, is refused, and is answered by a peer.
            assert (await chat(http, one.url, tenant.key))[0] == 200
            assert fake.requests[0].path.startswith("/a/")
            assert hits(fake)["a"] == 1
            # `two` has never called `a`, and its first pick would be `a`; `one` would go
            # back to it within two calls. Both leave it alone from their next call on.
            for url in (two.url, two.url, one.url, one.url):
                assert (await chat(http, url, tenant.key))[0] == 200
            assert hits(fake)["a"] == 1, hits(fake)
            fake.by_path["/a/v1/chat/completions"] = Scenario(recording=WHOLE)
            # Once its Retry-After has passed, each replica sends there again by itself.
            for gateway in (one, two):
                deadline = Deadline(20)
                before = hits(fake)["a"]
                while hits(fake)["a"] == before:
                    deadline.check(f"{gateway.url} calling deployment a again")
                    assert (await chat(http, gateway.url, tenant.key))[0] == 200
                    await asyncio.sleep(0.05)
    finally:
        await asyncio.gather(asyncio.to_thread(one.stop), asyncio.to_thread(two.stop))


RESPONSES = {r.name: r for r in recordings("openai-responses")}


async def test_a_stored_chain_goes_back_to_the_deployment_holding_it(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    live = await gateway_with(fake, tmp_path, (1, 1, 1), (0, 0, 0))
    try:
        assert live.http is not None
        base = RESPONSES["openai-phase.1.json"].body()
        # Each answer its own id (a recording has one), whichever deployment gives it.
        fake.push(*(Scenario(body=orjson.dumps({**base, "id": f"resp_{n}"})) for n in range(4)))
        tenant = await live.tenant()
        headers = {"Authorization": f"Bearer {tenant.key}"}

        async def create(**extra: Any) -> dict[str, Any]:
            body = {"model": "spread", "input": "hi", "store": True, **extra}
            async with live.http.post(  # type: ignore[union-attr]
                f"{live.url}/v1/responses", json=body, headers=headers
            ) as resp:
                assert resp.status == 200, await resp.text()
                found: dict[str, Any] = await resp.json()
                return found

        first = await create()
        assert fake.requests[-1].path.startswith("/a/")  # equal weights: `a`, `b`, `c`, ...
        # Round robin alone would send the next call to `b`; the chain goes back to `a`.
        await create(previous_response_id=first["id"])
        assert fake.requests[-1].path.startswith("/a/")
        # A call that is not part of the chain is spread as usual: `c` is next.
        await create()
        assert fake.requests[-1].path.startswith("/c/")
    finally:
        await stop_live(live)


async def test_access_lists_narrow_a_model_to_the_deployments_they_allow(
    weighted: Live, fake: FakeUpstream
) -> None:
    answer_all(fake)
    assert weighted.http is not None
    kept_off = await weighted.tenant(quota={"deny_models": ["dep-c/*"]})
    for _ in range(12):
        assert (await chat(weighted.http, weighted.url, kept_off.key))[0] == 200
    assert hits(fake)["c"] == 0
    assert hits(fake)["a"] + hits(fake)["b"] == 12
    nowhere = await weighted.tenant(quota={"models": ["dep-z/*"]})
    status, raw = await chat(weighted.http, weighted.url, nowhere.key)
    assert status == 403 and b"model_not_allowed" in raw

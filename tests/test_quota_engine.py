"""The quota engine through a live gateway, on memory:// and redis:// alike."""

from __future__ import annotations

import asyncio

from tests.support.clock import Deadline
from tests.support.gateway import Live
from tests.test_quota_support import chat, chat_body


async def test_requests_per_minute_denies_with_exact_retry_after(gateway: Live) -> None:
    tenant = await gateway.tenant(quota={"requests_per_minute": 3})
    assert gateway.http is not None
    statuses = []
    for _ in range(4):
        status, headers, body = await chat(gateway.http, gateway.url, tenant.key)
        statuses.append(status)
    assert statuses == [200, 200, 200, 429]
    assert body["error"]["code"] == "REQUEST_LIMIT_EXCEEDED"
    assert "3 requests per minute for this key" in body["error"]["message"]
    assert 58 <= int(headers["Retry-After"]) <= 60
    assert headers["RateLimit-Policy"] == '"key-rpm";q=3;w=60'


async def test_ratelimit_headers_report_the_tightest_limit(gateway: Live) -> None:
    tenant = await gateway.tenant(quota={"requests_per_minute": 10, "requests_per_hour": 100})
    assert gateway.http is not None
    status, headers, _ = await chat(gateway.http, gateway.url, tenant.key)
    assert status == 200
    assert headers["RateLimit-Policy"] == '"key-rpm";q=10;w=60'
    assert headers["RateLimit"].startswith('"key-rpm";r=9;t=')


async def test_streaming_response_carries_ratelimit_headers(gateway: Live) -> None:
    tenant = await gateway.tenant(quota={"requests_per_minute": 5})
    assert gateway.http is not None
    async with gateway.http.post(
        f"{gateway.url}/v1/chat/completions",
        json=chat_body(stream=True),
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as resp:
        assert resp.status == 200
        assert resp.headers["RateLimit"].startswith('"key-rpm";r=4;')
        await resp.read()


async def test_token_budget_refuses_once_spent_and_names_it(gateway: Live) -> None:
    tenant = await gateway.tenant(quota={"tokens_per_day": 200})
    assert gateway.http is not None
    body = chat_body("one two three", max_tokens=60)
    outcomes = []
    for _ in range(40):
        status, _headers, answer = await chat(gateway.http, gateway.url, tenant.key, body)
        outcomes.append(status)
        if status == 429:
            break
    assert outcomes[-1] == 429
    assert "tokens per day for this key" in answer["error"]["message"]
    # The last answers' settlements may still be on their way: wait for them, boundedly.
    deadline = Deadline(10)
    while True:
        status, usage = await gateway.admin("GET", f"/keys/{tenant.key_id}/usage")
        assert status == 200
        row = next(r for r in usage["limits"] if r["name"] == "tokens_per_day")
        today = usage["today"]
        settled = usage["in_flight"] == 0 and today["requests"] == outcomes.count(200)
        if settled or deadline.passed():
            break
        await asyncio.sleep(0.02)
    # Settled counters hold exactly the recorded usage: every estimate was refunded.
    assert row["used"] == today["input_tokens"] + today["output_tokens"]
    assert row["used"] <= 200
    assert usage["in_flight"] == 0


async def test_estimate_larger_than_the_limit_says_so(gateway: Live) -> None:
    tenant = await gateway.tenant(quota={"tokens_per_minute": 50})
    assert gateway.http is not None
    status, _, body = await chat(gateway.http, gateway.url, tenant.key, chat_body(max_tokens=1000))
    assert status == 429
    assert "more than the limit of 50 tokens per minute" in body["error"]["message"]


async def test_raising_a_limit_admits_at_once(gateway: Live) -> None:
    tenant = await gateway.tenant(quota={"requests_per_minute": 2})
    assert gateway.http is not None
    for _ in range(2):
        assert (await chat(gateway.http, gateway.url, tenant.key))[0] == 200
    assert (await chat(gateway.http, gateway.url, tenant.key))[0] == 429
    status, _ = await gateway.admin(
        "PUT", f"/keys/{tenant.key_id}/quota", {"requests_per_minute": 5}
    )
    assert status == 200
    status, headers, _ = await chat(gateway.http, gateway.url, tenant.key)
    assert status == 200
    assert headers["RateLimit"].startswith('"key-rpm";r=2;')


async def test_account_plan_applies_to_all_its_keys(gateway: Live) -> None:
    first = await gateway.tenant()
    assert gateway.http is not None
    status, _ = await gateway.admin(
        "PUT", f"/accounts/{first.account}/quota", {"requests_per_minute": 2}
    )
    assert status == 200
    status, other = await gateway.admin(
        "POST", "/keys", {"account": first.account, "branch": first.branch}
    )
    assert status == 201
    assert (await chat(gateway.http, gateway.url, first.key))[0] == 200
    assert (await chat(gateway.http, gateway.url, other["key"]))[0] == 200
    status, _, body = await chat(gateway.http, gateway.url, other["key"])
    assert status == 429
    assert "for this account" in body["error"]["message"]


async def test_gemini_call_estimated_from_its_path_and_generation_config(gateway: Live) -> None:
    tenant = await gateway.tenant(quota={"tokens_per_minute": 500})
    assert gateway.http is not None
    url = f"{gateway.url}/v1beta/models/local-echo:generateContent"
    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"maxOutputTokens": 1000},
    }
    async with gateway.http.post(url, json=body, headers={"x-goog-api-key": tenant.key}) as resp:
        assert resp.status == 429
        answer = await resp.json()
    assert answer["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert "more than the limit of 500 tokens per minute" in answer["error"]["message"]
    body["generationConfig"] = {"maxOutputTokens": 50}
    async with gateway.http.post(url, json=body, headers={"x-goog-api-key": tenant.key}) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["RateLimit-Policy"] == '"key-tpm";q=500;w=60'

"""Answers a retry cannot fix say so (`x-should-retry: false`, obeyed by the official SDKs
before their own status rules); ordinary rate limits and outages do not."""

from __future__ import annotations

import anthropic
import httpx2

from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.test_quota_support import chat, chat_body


async def test_an_estimate_over_the_whole_limit_is_final(gateway: Live) -> None:
    tenant = await gateway.tenant(quota={"tokens_per_minute": 50})
    assert gateway.http is not None
    status, headers, _ = await chat(
        gateway.http, gateway.url, tenant.key, chat_body(max_tokens=1000)
    )
    assert status == 429 and headers.get("x-should-retry") == "false"


async def test_an_ordinary_rate_limit_may_be_retried(gateway: Live) -> None:
    tenant = await gateway.tenant(quota={"requests_per_minute": 1})
    assert gateway.http is not None
    await chat(gateway.http, gateway.url, tenant.key)
    status, headers, _ = await chat(gateway.http, gateway.url, tenant.key)
    assert status == 429 and "x-should-retry" not in headers


async def test_a_blocked_account_is_final(gateway: Live) -> None:
    tenant = await gateway.tenant()
    assert gateway.http is not None
    await gateway.admin("POST", f"/accounts/{tenant.account}/block", {})
    status, headers, _ = await chat(gateway.http, gateway.url, tenant.key)
    assert status == 429 and headers.get("x-should-retry") == "false"


async def test_an_unconfigured_provider_is_a_final_configuration_error(store_url: str) -> None:
    live = await start_live(settings_for(gateway_env(store_url, None)))
    try:
        tenant = await live.tenant()
        sent: list[str] = []

        async def count(request: httpx2.Request) -> None:
            sent.append(str(request.url))

        http = httpx2.AsyncClient(event_hooks={"request": [count]})
        sdk = anthropic.AsyncAnthropic(
            api_key=tenant.key, base_url=live.url, max_retries=3, http_client=http
        )
        try:
            await sdk.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=16,
                messages=[{"role": "user", "content": "hi"}],
            )
        except anthropic.APIStatusError as err:
            assert err.status_code == 503
            assert err.response.headers.get("x-should-retry") == "false"
            assert err.body["error"]["type"] == "configuration_error"  # type: ignore[index]
        else:
            raise AssertionError("an unconfigured provider answered")
        finally:
            await sdk.close()
        assert len(sent) == 1, sent  # one attempt, not four
    finally:
        await stop_live(live)

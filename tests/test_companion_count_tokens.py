"""Token counting through the official SDKs: Anthropic's `messages.count_tokens` and
google-genai's `models.count_tokens`. The provider's own count where it has one (relayed from
the client's own API, asked in the provider's API otherwise), `local/echo`'s own count, the
documented local estimate for OpenAI models; each count is admitted and metered as a request
that used no tokens."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import orjson
import pytest
from google import genai
from google.genai import types

from tests.support.clock import Deadline
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import UPSTREAM_SECRET, Live, Tenant

HELLO: list[Any] = [{"role": "user", "content": "Hello, world"}]


@pytest.fixture
async def tenant(gateway: Live) -> Tenant:
    """A caller without limits."""
    return await gateway.tenant()


@pytest.fixture
async def claude(gateway: Live, tenant: Tenant) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The Anthropic SDK pointed at the gateway."""
    sdk = anthropic.AsyncAnthropic(api_key=tenant.key, base_url=gateway.url, max_retries=0)
    yield sdk
    await sdk.close()


@pytest.fixture
async def google(gateway: Live, tenant: Tenant) -> AsyncIterator[genai.Client]:
    """The Google Gen AI SDK pointed at the gateway."""
    options = types.HttpOptions(
        base_url=gateway.url, retry_options=types.HttpRetryOptions(attempts=1)
    )
    sdk = genai.Client(api_key=tenant.key, http_options=options)
    yield sdk
    await sdk.aio.aclose()


async def _usage_today(gateway: Live, key_id: str, requests: int) -> dict[str, int]:
    """The key's usage today, once `requests` calls have settled (bounded wait)."""
    deadline = Deadline(10)  # bounds the test's own waiting, not an assertion on speed
    while True:
        status, body = await gateway.admin("GET", f"/keys/{key_id}/usage")
        assert status == 200, body
        today: dict[str, int] = body["today"]
        if (today["requests"] >= requests and body["in_flight"] == 0) or deadline.passed():
            return today
        await asyncio.sleep(0.02)


async def test_claude_is_counted_by_anthropic_bytes_relayed(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    answer = b'{"input_tokens":42}'
    fake.push(Scenario(body=answer), Scenario(body=answer))
    raw = await claude.messages.with_raw_response.count_tokens(
        model="claude-sonnet-4-6", messages=HELLO, system="Be brief."
    )
    assert await raw.http_response.aread() == answer  # Anthropic's own answer, as it is
    assert (await raw.parse()).input_tokens == 42
    seen = fake.requests[-1]
    assert seen.path == "/v1/messages/count_tokens"
    assert seen.body == {"model": "claude-sonnet-4-6", "messages": HELLO, "system": "Be brief."}
    assert seen.headers["x-api-key"] == UPSTREAM_SECRET
    # Any accepted name is sent as Anthropic's own.
    counted = await claude.messages.count_tokens(
        model="anthropic/claude-sonnet-4.6", messages=HELLO
    )
    assert counted.input_tokens == 42
    assert fake.requests[-1].body["model"] == "claude-sonnet-4-6"


async def test_gemini_is_counted_by_gemini_from_the_anthropic_sdk(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    fake.push(Scenario(body=b'{"totalTokens":17}'))
    counted = await claude.messages.count_tokens(
        model="gemini-2.5-flash", messages=HELLO, system="Be brief."
    )
    assert counted.input_tokens == 17
    seen = fake.requests[-1]
    assert seen.path == "/v1beta/models/gemini-2.5-flash:countTokens"
    wrapped = seen.body["generateContentRequest"]
    assert wrapped["model"] == "models/gemini-2.5-flash"
    assert wrapped["contents"] == [{"role": "user", "parts": [{"text": "Hello, world"}]}]
    assert wrapped["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert "maxOutputTokens" not in str(wrapped)  # nothing is generated


async def test_openai_models_get_the_documented_local_estimate(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    counted = await claude.messages.count_tokens(model="gpt-5-4", messages=HELLO)
    # 3 to open the reply, 3 for the message, a quarter of "Hello, world"'s 12 bytes.
    assert counted.input_tokens == 3 + 3 + math.ceil(12 / 4)
    longer = await claude.messages.count_tokens(
        model="gpt-5-4", messages=[{"role": "user", "content": "Hello, world" * 100}]
    )
    assert longer.input_tokens == 3 + 3 + 300
    assert fake.requests == []  # OpenAI has no counting endpoint: nothing was sent


async def test_local_echo_counts_what_its_calls_are_charged(
    claude: anthropic.AsyncAnthropic,
) -> None:
    messages: list[Any] = [{"role": "user", "content": "one two three four"}]
    counted = await claude.messages.count_tokens(model="local/echo", messages=messages)
    reply = await claude.messages.create(model="local/echo", max_tokens=64, messages=messages)
    assert counted.input_tokens == reply.usage.input_tokens == 4


async def test_google_sdk_counts_on_each_provider(google: genai.Client, fake: FakeUpstream) -> None:
    # A Gemini model: Google's own count, the body relayed.
    fake.push(Scenario(body=b'{"totalTokens":5}'))
    counted = await google.aio.models.count_tokens(model="gemini-2.5-flash", contents="Hi there")
    assert counted.total_tokens == 5
    seen = fake.requests[-1]
    assert seen.path == "/v1beta/models/gemini-2.5-flash:countTokens"
    assert seen.body == {"contents": [{"role": "user", "parts": [{"text": "Hi there"}]}]}
    assert seen.headers["x-goog-api-key"] == UPSTREAM_SECRET
    # A Claude model: Anthropic's count, asked in Anthropic's API (no max_tokens there).
    fake.push(Scenario(body=b'{"input_tokens":11}'))
    counted = await google.aio.models.count_tokens(model="claude-haiku-4-5", contents="Hi there")
    assert counted.total_tokens == 11
    seen = fake.requests[-1]
    assert seen.path == "/v1/messages/count_tokens"
    assert seen.body == {
        "model": "claude-haiku-4-5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}],
    }
    # The in-process model: its own count (one token per word).
    counted = await google.aio.models.count_tokens(model="local/echo", contents="a b c")
    assert counted.total_tokens == 3
    assert len(fake.requests) == 2


async def test_a_count_is_a_metered_request_without_tokens(
    gateway: Live, fake: FakeUpstream
) -> None:
    tenant = await gateway.tenant(quota={"requests_per_minute": 2})
    sdk = anthropic.AsyncAnthropic(api_key=tenant.key, base_url=gateway.url, max_retries=0)
    try:
        fake.push(Scenario(body=b'{"input_tokens":42}'))
        first = await sdk.messages.count_tokens(model="claude-sonnet-4-6", messages=HELLO)
        second = await sdk.messages.count_tokens(model="local/echo", messages=HELLO)
        assert (first.input_tokens, second.input_tokens) == (42, 2)
        with pytest.raises(anthropic.RateLimitError) as refused:
            await sdk.messages.count_tokens(model="claude-sonnet-4-6", messages=HELLO)
        assert refused.value.response.headers.get("Retry-After")
    finally:
        await sdk.close()
    assert len(fake.requests) == 1  # the refused count never reached Anthropic
    today = await _usage_today(gateway, tenant.key_id, 2)
    assert today["requests"] == 2
    assert (today["input_tokens"], today["output_tokens"], today["cost_micros"]) == (0, 0, 0)


async def test_a_count_on_a_model_the_api_cannot_call_is_refused(
    claude: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.messages.count_tokens(model="text-embedding-3-small", messages=HELLO)
    assert "not available on this endpoint" in str(refused.value)
    with pytest.raises(anthropic.BadRequestError) as unknown:
        await claude.messages.count_tokens(model="claude-nothing-9", messages=HELLO)
    assert "unknown model 'claude-nothing-9'" in str(unknown.value)
    assert fake.requests == []


async def test_a_wrapped_gemini_count_names_googles_model(
    gateway: Live, tenant: Tenant, fake: FakeUpstream
) -> None:
    # `generateContentRequest.model` must match the URL's model at Google: the catalog id the
    # client used becomes Google's name; a body already naming it goes as it is.
    contents = [{"role": "user", "parts": [{"text": "hi"}]}]
    assert gateway.http is not None
    for sent, path in (
        ("models/gemini-2-5-flash", "/v1beta/models/gemini-2-5-flash:countTokens"),
        ("models/gemini-2.5-flash", "/v1beta/google/gemini-2.5-flash:countTokens"),
    ):
        fake.push(Scenario(body=b'{"totalTokens":1}'))
        raw = orjson.dumps({"generateContentRequest": {"model": sent, "contents": contents}})
        async with gateway.http.post(
            f"{gateway.url}{path}",
            data=raw,
            headers={"x-goog-api-key": tenant.key, "Content-Type": "application/json"},
        ) as resp:
            assert resp.status == 200, await resp.text()
            assert await resp.json() == {"totalTokens": 1}
        seen = fake.requests[-1]
        assert seen.path == "/v1beta/models/gemini-2.5-flash:countTokens"
        assert seen.body["generateContentRequest"]["model"] == "models/gemini-2.5-flash"
    assert seen.raw == raw  # already Google's name: the client's bytes

"""The official OpenAI SDK through the gateway: chat, streaming, upstream errors, disconnects."""

from __future__ import annotations

import openai
import pytest

from tests.support.clock import stamp, wait_until
from tests.support.fake_upstream import Scenario
from tests.support.recordings import recordings

CHAT = {r.name: r for r in recordings("openai-chat")}
LIMIT_HEADERS = {
    "retry-after": "7",
    "retry-after-ms": "6500",
    "x-ratelimit-limit-requests": "500",
    "x-ratelimit-remaining-requests": "0",
    "x-ratelimit-reset-requests": "6.5s",
    "x-ratelimit-limit-tokens": "30000",
    "x-ratelimit-remaining-tokens": "29000",
    "x-ratelimit-reset-tokens": "2ms",
    "anthropic-ratelimit-requests-limit": "50",
}


@pytest.fixture
async def client(gateway):
    tenant = await gateway.tenant()
    sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{gateway.url}/v1", max_retries=0)
    yield sdk
    await sdk.close()


async def test_create_echo(client) -> None:
    resp = await client.chat.completions.create(
        model="local/echo", messages=[{"role": "user", "content": "ping pong"}]
    )
    assert resp.choices[0].message.content == "Echo: ping pong"
    assert resp.usage is not None and resp.usage.completion_tokens == 3


async def test_stream_echo_with_a_tool(client) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {
                    "type": "object",
                    "properties": {"q": {"type": "string"}},
                    "required": ["q"],
                },
            },
        }
    ]
    stream = await client.chat.completions.create(
        model="local/echo",
        messages=[{"role": "user", "content": "find it"}],
        tools=tools,
        stream=True,
    )
    name, args, finish = "", "", None
    async for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or []:
            name += call.function.name or ""
            args += call.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert (name, args, finish) == ("lookup", '{"q":"find it"}', "tool_calls")


async def test_upstream_passthrough_stream(client, fake) -> None:
    fake.push(Scenario(recording=CHAT["openai-text.chunks.txt"]))
    stream = await client.chat.completions.create(
        model="gpt-5-4", messages=[{"role": "user", "content": "x"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    expected = "".join(
        e["choices"][0]["delta"].get("content") or ""
        for e in CHAT["openai-text.chunks.txt"].events()
        if e["choices"]
    )
    assert text == expected and len(text) > 100


async def test_upstream_429_headers_reach_the_sdk_unchanged(client, fake) -> None:
    body = (
        b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'
    )
    fake.push(Scenario(status=429, body=body, headers=LIMIT_HEADERS))
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(
            model="gpt-5-4", messages=[{"role": "user", "content": "x"}]
        )
    headers = info.value.response.headers
    for name, value in LIMIT_HEADERS.items():
        assert headers[name] == value


async def test_rate_limit_headers_on_success_stream(client, fake) -> None:
    fake.push(Scenario(recording=CHAT["openai-text.chunks.txt"], headers=LIMIT_HEADERS))
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-5-4", messages=[{"role": "user", "content": "x"}], stream=True
    )
    for name, value in LIMIT_HEADERS.items():
        assert raw.headers[name] == value
    async for _ in raw.parse():
        pass


async def test_upstream_5xx_is_502_without_secrets(client, fake) -> None:
    fake.push(
        Scenario(
            status=500, body=b'{"error":{"message":"boom at 10.1.2.3 with sk-upstream-secret"}}'
        )
    )
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(
            model="gpt-5-4", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 502
    assert "10.1.2.3" not in info.value.response.text and "sk-" not in info.value.response.text


async def test_upstream_refused_is_502(gateway, fake) -> None:
    tenant = await gateway.tenant()
    await fake.stop()  # nothing listens on the upstream port any more
    # How soon: tests/soak/test_durations_soak.py (a refusal is answered at once).
    async with gateway.http.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-5-4", "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as resp:
        body = await resp.json()
    assert resp.status == 502 and body["error"]["code"] == "upstream_unreachable"


async def test_mid_stream_reset_ends_with_an_error_chunk(client, fake) -> None:
    fake.push(Scenario(recording=CHAT["openai-text.chunks.txt"], reset_after=5))
    stream = await client.chat.completions.create(
        model="gpt-5-4", messages=[{"role": "user", "content": "x"}], stream=True
    )
    seen = 0
    with pytest.raises(openai.APIError) as info:
        async for _ in stream:
            seen += 1
    assert seen == 5
    assert "interrupted" in str(info.value.message)


async def test_client_disconnect_closes_the_upstream(gateway, fake) -> None:
    """The provider's endless stream is closed once the client leaves (it never ends by
    itself). How soon is a printed figure; tests/soak/test_durations_soak.py holds it to a
    second."""
    tenant = await gateway.tenant()
    fake.push(Scenario(endless=True, delay_chunks=0.02))
    async with gateway.http.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-5-4", "stream": True, "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as resp:
        assert resp.status == 200
        await resp.content.readline()
        await resp.content.readline()
        resp.connection.transport.abort()  # the client goes away without a goodbye
        closed_at = stamp()
    await wait_until(lambda: bool(fake.disconnects), "upstream connection still open", poll=0.01)
    print(
        f"upstream closed {(fake.disconnects[0] - closed_at) * 1000:.0f} ms after the client left"
    )

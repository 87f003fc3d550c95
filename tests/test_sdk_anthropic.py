"""The official Anthropic SDK through the gateway, against each provider family."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest

from tests.support.expected import expected
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.matrix import FAMILIES, WEATHER_TOOL, Family, responses_available
from tests.support.recordings import recordings

TOOLS: list[Any] = [
    {
        "name": WEATHER_TOOL["name"],
        "description": WEATHER_TOOL["description"],
        "input_schema": WEATHER_TOOL["parameters"],
    }
]
FAMILY_IDS = [f.name for f in FAMILIES]


@pytest.fixture
async def gw(fake: FakeUpstream) -> AsyncIterator[Live]:
    """A gateway on the embedded store."""
    live = await start_live(settings_for(gateway_env("memory://", fake.url)))
    yield live
    await stop_live(live)


@pytest.fixture
async def client(gw: Live) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The SDK pointed at the gateway, authenticated with x-api-key as it always is."""
    tenant = await gw.tenant()
    sdk = anthropic.AsyncAnthropic(api_key=tenant.key, base_url=gw.url, max_retries=0)
    yield sdk
    await sdk.close()


def _skip_without(family: Family, gw: Live) -> None:
    if family.api == "openai-responses" and not responses_available(gw):
        pytest.skip("the Responses API is not in this build")


def _content(message: anthropic.types.Message) -> tuple[str, list[tuple[str, Any]]]:
    text = "".join(b.text for b in message.content if b.type == "text")
    calls = [(b.name, b.input) for b in message.content if b.type == "tool_use"]
    return text, calls


@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
async def test_messages_create(
    client: anthropic.AsyncAnthropic, gw: Live, fake: FakeUpstream, family: Family, tools: bool
) -> None:
    _skip_without(family, gw)
    rec = family.recording(family.tool if tools else family.text, stream=False)
    exp = expected(rec)
    fake.push(Scenario(recording=rec))
    message = await client.messages.create(
        model=family.model,
        max_tokens=512,
        messages=[{"role": "user", "content": "What is the weather in San Francisco?"}],
        **({"tools": TOOLS} if tools else {}),
    )
    assert _content(message) == (exp.text, exp.calls)
    assert message.stop_reason == ("tool_use" if tools else "end_turn")
    assert message.usage.output_tokens == exp.usage.output
    cached = message.usage.cache_read_input_tokens or 0
    written = message.usage.cache_creation_input_tokens or 0
    assert message.usage.input_tokens + cached + written == exp.usage.input


@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
async def test_messages_stream_final_message(
    client: anthropic.AsyncAnthropic, gw: Live, fake: FakeUpstream, family: Family, tools: bool
) -> None:
    _skip_without(family, gw)
    rec = family.recording(family.tool if tools else family.text, stream=True)
    exp = expected(rec)
    fake.push(Scenario(recording=rec))
    async with client.messages.stream(
        model=family.model,
        max_tokens=512,
        messages=[{"role": "user", "content": "What is the weather in San Francisco?"}],
        **({"tools": TOOLS} if tools else {}),
    ) as stream:
        streamed = "".join([text async for text in stream.text_stream])
        message = await stream.get_final_message()
    assert _content(message) == (exp.text, exp.calls)
    assert streamed == exp.text
    assert message.usage.output_tokens == exp.usage.output


async def test_thinking_blocks_and_signature_from_claude_reach_the_sdk(
    client: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    rec = next(r for r in recordings("anthropic") if r.name == "anthropic-clear-thinking.1.json")
    fake.push(Scenario(recording=rec))
    message = await client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "925 / 5?"}],
    )
    thinking = message.content[0]
    assert thinking.type == "thinking"
    assert thinking.signature == rec.body()["content"][0]["signature"]
    assert fake.requests[-1].body["thinking"] == {"type": "enabled", "budget_tokens": 2048}


async def test_gemini_thoughts_become_thinking_blocks(
    client: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    rec = next(
        r for r in recordings("gemini") if r.name == "google-stream-no-args-tool-call.chunks.txt"
    )
    fake.push(Scenario(recording=rec))
    async with client.messages.stream(
        model="gemini-2-5-flash",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 4096},
        messages=[{"role": "user", "content": "Read the theme and screens A, B and C"}],
        tools=TOOLS,
    ) as stream:
        message = await stream.get_final_message()
    kinds = [b.type for b in message.content]
    assert kinds[:2] == ["thinking", "tool_use"]
    assert message.content[0].thinking.startswith("**Processing User Requests**")
    assert message.content[0].signature  # Gemini's signature, kept for the next turn
    config = fake.requests[-1].body["generationConfig"]["thinkingConfig"]
    assert config == {"thinkingBudget": 4096, "includeThoughts": True}


async def test_upstream_errors_become_anthropic_errors(
    client: anthropic.AsyncAnthropic, fake: FakeUpstream
) -> None:
    rec = next(r for r in recordings("gemini") if r.name == "google-429-retry-info.json")
    fake.push(Scenario(recording=rec, status=429))
    with pytest.raises(anthropic.RateLimitError) as info:
        await client.messages.create(
            model="gemini-2-5-flash",
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
        )
    assert info.value.response.headers["retry-after"] == "35"
    assert info.value.body["error"]["type"] == "rate_limit_error"

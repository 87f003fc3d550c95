"""The official OpenAI SDK (chat and responses) through the gateway, against each family."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from tests.support.expected import expected
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.matrix import FAMILIES, WEATHER_TOOL, Family, responses_available

FAMILY_IDS = [f.name for f in FAMILIES]
CHAT_TOOLS: list[Any] = [{"type": "function", "function": WEATHER_TOOL}]
RESPONSES_TOOLS: list[Any] = [{"type": "function", **WEATHER_TOOL}]
MESSAGES: list[Any] = [{"role": "user", "content": "What is the weather in San Francisco?"}]


@pytest.fixture
async def gw(fake: FakeUpstream) -> AsyncIterator[Live]:
    """A gateway on the embedded store."""
    live = await start_live(settings_for(gateway_env("memory://", fake.url)))
    yield live
    await stop_live(live)


@pytest.fixture
async def client(gw: Live) -> AsyncIterator[openai.AsyncOpenAI]:
    """The SDK pointed at the gateway."""
    tenant = await gw.tenant()
    sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{gw.url}/v1", max_retries=0)
    yield sdk
    await sdk.close()


def _skip_without(family: Family, gw: Live, api: str = "chat") -> None:
    if (family.api == "openai-responses" or api == "responses") and not responses_available(gw):
        pytest.skip("the Responses API is not in this build")


@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
async def test_chat_create(
    client: openai.AsyncOpenAI, gw: Live, fake: FakeUpstream, family: Family, tools: bool
) -> None:
    family = family.seen_from("chat")
    _skip_without(family, gw)
    rec = family.recording(family.tool if tools else family.text, stream=False)
    exp = expected(rec)
    fake.push(Scenario(recording=rec))
    resp = await client.chat.completions.create(
        model=family.model, messages=MESSAGES, **({"tools": CHAT_TOOLS} if tools else {})
    )
    message = resp.choices[0].message
    assert (message.content or "") == exp.text
    calls = [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []]
    assert calls == exp.calls
    assert resp.choices[0].finish_reason == ("tool_calls" if tools else "stop")
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (
        exp.usage.input,
        exp.usage.output,
    )


@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
async def test_chat_stream(
    client: openai.AsyncOpenAI, gw: Live, fake: FakeUpstream, family: Family, tools: bool
) -> None:
    family = family.seen_from("chat")
    _skip_without(family, gw)
    rec = family.recording(family.tool if tools else family.text, stream=True)
    exp = expected(rec)
    fake.push(Scenario(recording=rec))
    stream = await client.chat.completions.create(
        model=family.model,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        **({"tools": CHAT_TOOLS} if tools else {}),
    )
    text, args, names, usage = "", {}, {}, None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                assert call.function is not None
                if call.function.name:
                    names[call.index] = call.function.name
                args[call.index] = args.get(call.index, "") + (call.function.arguments or "")
    assert text == exp.text
    assert [(names[i], json.loads(args[i])) for i in sorted(names)] == exp.calls
    assert usage is not None and usage.completion_tokens == exp.usage.output


@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_responses_with_tools(
    client: openai.AsyncOpenAI, gw: Live, fake: FakeUpstream, family: Family, stream: bool
) -> None:
    _skip_without(family, gw, "responses")
    rec = family.recording(family.tool, stream=stream)
    exp = expected(rec)
    fake.push(Scenario(recording=rec))
    if stream:
        async with client.responses.stream(
            model=family.model, input="Weather in San Francisco?", tools=RESPONSES_TOOLS
        ) as events:
            resp = await events.get_final_response()
    else:
        resp = await client.responses.create(
            model=family.model, input="Weather in San Francisco?", tools=RESPONSES_TOOLS
        )
    calls = [(i.name, json.loads(i.arguments)) for i in resp.output if i.type == "function_call"]
    assert calls == exp.calls
    assert resp.output_text == exp.text
    assert resp.usage is not None and resp.usage.output_tokens == exp.usage.output


@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
async def test_responses_text(
    client: openai.AsyncOpenAI, gw: Live, fake: FakeUpstream, family: Family
) -> None:
    _skip_without(family, gw, "responses")
    rec = family.recording(family.text, stream=False)
    exp = expected(rec)
    fake.push(Scenario(recording=rec))
    resp = await client.responses.create(model=family.model, input="hello")
    assert resp.output_text == exp.text

"""The official Google Gen AI SDK through the gateway, against each provider family."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.support.expected import expected
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.matrix import FAMILIES, WEATHER_TOOL, Family, responses_available
from tests.support.recordings import recordings

FAMILY_IDS = [f.name for f in FAMILIES]
PROMPT = "What is the weather in San Francisco?"


@pytest.fixture
async def gw(fake: FakeUpstream) -> AsyncIterator[Live]:
    """A gateway on the embedded store."""
    live = await start_live(settings_for(gateway_env("memory://", fake.url)))
    yield live
    await stop_live(live)


@pytest.fixture
async def client(gw: Live) -> AsyncIterator[genai.Client]:
    """The SDK pointed at the gateway; it sends the key as x-goog-api-key."""
    tenant = await gw.tenant()
    options = types.HttpOptions(base_url=gw.url, retry_options=types.HttpRetryOptions(attempts=1))
    sdk = genai.Client(api_key=tenant.key, http_options=options)
    yield sdk
    await sdk.aio.aclose()


def _config(tools: bool, **extra: Any) -> types.GenerateContentConfig:
    declared = [types.Tool(function_declarations=[types.FunctionDeclaration(**WEATHER_TOOL)])]
    return types.GenerateContentConfig(
        tools=declared if tools else None,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        **extra,
    )


def _skip_without(family: Family, gw: Live) -> None:
    if family.api == "openai-responses" and not responses_available(gw):
        pytest.skip("the Responses API is not in this build")


def _calls(responses: list[types.GenerateContentResponse]) -> list[tuple[str, Any]]:
    return [(c.name, c.args) for r in responses for c in r.function_calls or []]


def _text(responses: list[types.GenerateContentResponse]) -> str:
    out = ""
    for response in responses:
        for candidate in response.candidates or []:
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.text and not part.thought:
                    out += part.text
    return out


@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
async def test_generate_content(
    client: genai.Client, gw: Live, fake: FakeUpstream, family: Family, tools: bool
) -> None:
    _skip_without(family, gw)
    rec = family.recording(family.tool if tools else family.text, stream=False)
    exp = expected(rec)
    fake.push(Scenario(recording=rec))
    response = await client.aio.models.generate_content(
        model=family.model, contents=PROMPT, config=_config(tools)
    )
    assert _text([response]) == exp.text
    assert _calls([response]) == exp.calls
    usage = response.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == exp.usage.input
    assert (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0) == (
        exp.usage.output
    )


@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
async def test_generate_content_stream(
    client: genai.Client, gw: Live, fake: FakeUpstream, family: Family, tools: bool
) -> None:
    _skip_without(family, gw)
    rec = family.recording(family.tool if tools else family.text, stream=True)
    exp = expected(rec)
    fake.push(Scenario(recording=rec))
    stream = await client.aio.models.generate_content_stream(
        model=family.model, contents=PROMPT, config=_config(tools)
    )
    chunks = [chunk async for chunk in stream]
    assert _text(chunks) == exp.text
    assert _calls(chunks) == exp.calls
    assert chunks[-1].candidates and chunks[-1].candidates[0].finish_reason == "STOP"
    usage = chunks[-1].usage_metadata
    assert usage is not None and usage.prompt_token_count == exp.usage.input


async def test_sdk_model_names_resolve(client: genai.Client, fake: FakeUpstream) -> None:
    """`gemini-2.5-flash` (Google's own id) finds the catalog's `google/gemini-2.5-flash`."""
    rec = next(r for r in recordings("gemini") if r.name == "google-text.json")
    fake.push(Scenario(recording=rec))
    await client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert fake.requests[-1].path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert fake.requests[-1].body == {"contents": [{"parts": [{"text": "hi"}], "role": "user"}]}


async def test_thinking_config_reaches_claude_as_a_budget(
    client: genai.Client, fake: FakeUpstream
) -> None:
    rec = next(r for r in recordings("anthropic") if r.name == "anthropic-clear-thinking.1.json")
    fake.push(Scenario(recording=rec))
    config = _config(
        False, thinking_config=types.ThinkingConfig(thinking_budget=3000, include_thoughts=True)
    )
    response = await client.aio.models.generate_content(
        model="claude-sonnet-4-6", contents="925 / 5?", config=config
    )
    sent = fake.requests[-1].body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 3000}
    parts = response.candidates[0].content.parts  # type: ignore[index,union-attr]
    assert parts is not None and parts[0].thought is True
    assert parts[0].thought_signature  # Claude's signature rides on the thought part


async def test_upstream_429_is_a_google_error(client: genai.Client, fake: FakeUpstream) -> None:
    rec = next(r for r in recordings("gemini") if r.name == "google-429-retry-info.json")
    fake.push(Scenario(recording=rec, status=429))
    with pytest.raises(genai_errors.ClientError) as info:
        await client.aio.models.generate_content(model="gemini-2-5-flash", contents="hi")
    assert info.value.code == 429
    assert info.value.status == "RESOURCE_EXHAUSTED"

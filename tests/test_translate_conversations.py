"""Two-turn conversations for every pair of client API and provider family.

Tool calling: the first turn ends in a tool call; the client sends the call back with its
result, as its SDK would, and the provider must receive that call and result linked together
(ids, or names for Gemini) with Gemini's thought signature in place. Reasoning: the effort or
budget reaches the provider in its own terms, reasoning comes back in the client's form, and
the next turn replays it in a form the provider accepts (Claude's signatures kept where the
client API can carry them; nothing unsigned sent to Claude).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.conversation import (
    TOOL_OUTPUT,
    assistant_turn,
    body_with_history,
    seen_by,
    tool_results,
    user_turn,
)
from tests.support.expected import expected
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.matrix import (
    CLIENT_APIS,
    FAMILIES,
    Family,
    call,
    request_for,
    responses_available,
)

PROMPT = "What is the weather in San Francisco?"
PAIRS = [pytest.param(api, f, id=f"{api}->{f.name}") for api in CLIENT_APIS for f in FAMILIES]
REASONING_RECORDINGS = {
    "anthropic": "anthropic-clear-thinking.1",
    "gemini": "google-reasoning",
    "openai-chat": "deepseek-reasoning",
    "openai-responses": "openai-reasoning-encrypted-content.1",
}
REASONING_PARAMS: dict[str, dict[str, Any]] = {
    "chat": {"reasoning_effort": "high"},
    "messages": {"thinking": {"type": "enabled", "budget_tokens": 16384}, "max_tokens": 32000},
    "gemini": {
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 16384, "includeThoughts": True}}
    },
    "responses": {"reasoning": {"effort": "high"}},
}
# "high" effort as each provider wire spells it.
REASONING_SENT: dict[str, Any] = {
    "anthropic": {"type": "enabled", "budget_tokens": 16384},
    "gemini": {"thinkingBudget": 16384, "includeThoughts": True},
    "openai-chat": "high",
    "openai-responses": "high",
}


@pytest.fixture
async def gw(fake: FakeUpstream) -> AsyncIterator[Live]:
    """A gateway on the embedded store."""
    live = await start_live(settings_for(gateway_env("memory://", fake.url)))
    yield live
    await stop_live(live)


def _wire(api: str, family: Family, gw: Live) -> Family:
    wire = family.seen_from(api)
    if "openai-responses" in (wire.api, f"openai-{api}") and not responses_available(gw):
        pytest.skip("the Responses API is not in this build")
    return wire


@pytest.mark.parametrize(("api", "family"), PAIRS)
async def test_two_turn_tool_call(gw: Live, fake: FakeUpstream, api: str, family: Family) -> None:
    wire = _wire(api, family, gw)
    tool_rec = wire.recording(wire.tool, stream=False)
    text_rec = wire.recording(wire.text, stream=False)
    fake.push(Scenario(recording=tool_rec), Scenario(recording=text_rec))
    tenant = await gw.tenant()

    path, body = request_for(api, family.model, PROMPT, stream=False, tools=True)
    first = await call(gw, tenant.key, api, path, body)
    assert first.status == 200, first.error
    assert first.answer is not None
    calls = expected(tool_rec).calls
    assert first.answer.calls == calls

    history = [
        *user_turn(api, PROMPT),
        *assistant_turn(api, first.answer),
        *tool_results(api, first.answer),
    ]
    path, body = request_for(api, family.model, PROMPT, stream=False, tools=True)
    body_with_history(api, body, history)
    second = await call(gw, tenant.key, api, path, body)
    assert second.status == 200, second.error
    assert second.answer is not None and second.answer.text == expected(text_rec).text

    seen = seen_by(wire.api, fake.requests[-1].body)
    assert [(name, args) for _, name, args in seen.calls] == calls
    assert [output for _, output in seen.results] == [TOOL_OUTPUT] * len(calls)
    if wire.api == "gemini":
        # Gemini pairs results with calls by name, and wants the first call signed.
        assert [key for key, _ in seen.results] == [name for name, _ in calls]
        assert seen.signatures, "the replayed function call must carry a thought signature"
    else:
        assert [key for key, _ in seen.results] == [cid for cid, _, _ in seen.calls]


@pytest.mark.parametrize(("api", "family"), PAIRS)
async def test_two_turn_reasoning(gw: Live, fake: FakeUpstream, api: str, family: Family) -> None:
    wire = _wire(api, family, gw)
    thinking_rec = wire.recording(REASONING_RECORDINGS[wire.api], stream=False)
    text_rec = wire.recording(wire.text, stream=False)
    fake.push(Scenario(recording=thinking_rec), Scenario(recording=text_rec))
    tenant = await gw.tenant()

    path, body = request_for(api, family.model, "925 / 5?", stream=False, **REASONING_PARAMS[api])
    first = await call(gw, tenant.key, api, path, body)
    assert first.status == 200, first.error
    assert first.answer is not None
    exp = expected(thinking_rec)
    assert first.answer.reasoning == exp.reasoning
    assert first.answer.text == exp.text
    sent = seen_by(wire.api, fake.requests[-1].body).reasoning_config
    if wire.api == "openai-responses":
        sent = sent["effort"]
    assert sent == REASONING_SENT[wire.api]

    history = [
        *user_turn(api, "925 / 5?"),
        *assistant_turn(api, first.answer),
        *user_turn(api, "And divided by 5 again?"),
    ]
    path, body = request_for(api, family.model, "", stream=False, **REASONING_PARAMS[api])
    body_with_history(api, body, history)
    second = await call(gw, tenant.key, api, path, body)
    assert second.status == 200, second.error
    assert second.answer is not None and second.answer.text == expected(text_rec).text

    seen = seen_by(wire.api, fake.requests[-1].body)
    if wire.api == "anthropic":
        assert seen.unsigned_thinking == 0, "Claude refuses thinking blocks without signatures"
        signature = thinking_rec.body()["content"][0]["signature"]
        if api in ("messages", "gemini"):  # client APIs that carry signatures
            assert seen.signatures == [signature]
    elif wire.api == "openai-chat" and api != "chat":
        # DeepSeek refuses earlier turns' reasoning_content (a Chat client's own is relayed).
        assert seen.reasoning_texts == []
    elif wire.api == "gemini":
        assert seen.reasoning_texts == []  # Gemini wants signatures, never thought text

"""The OpenAI Agents SDK against a live gateway, on an OpenAI, an Anthropic and a Gemini model
(answered by the fake provider) and `local/echo`, through its Responses and its Chat
Completions model: a run, a run with a function tool (one call at a time, as
`ModelSettings(parallel_tool_calls=False)` asks), a streamed run with the tool, structured
output, and a three-turn conversation chained by `previous_response_id`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)
from agents.models.interface import Model
from openai.types.responses import ResponseTextDeltaEvent
from pydantic import BaseModel

from tests.conformance.provider import transcript
from tests.support.fake_upstream import FakeUpstream, Seen
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live

# Each model, and the provider API the fake hears it in from each SDK model class (None: no
# provider is called). OpenAI serves Chat Completions clients over Chat Completions.
MODELS: dict[str, dict[str, str | None]] = {
    "gpt-5-4": {"responses": "responses", "chat": "chat"},
    "claude-sonnet-4-6": {"responses": "messages", "chat": "messages"},
    "gemini-2-5-flash": {"responses": "gemini", "chat": "gemini"},
    "local/echo": {"responses": None, "chat": None},
}
KINDS = ("responses", "chat")


class Trip(BaseModel):
    """A structured answer."""

    city: str
    days: int


@function_tool
def weather(location: str) -> str:
    """The weather in a place."""
    return f"sunny in {location}"


@pytest.fixture(autouse=True)
def no_tracing() -> Iterator[None]:
    """The SDK's traces go to OpenAI's servers by default: never from a test."""
    set_tracing_disabled(True)
    yield


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK reads OPENAI_API_KEY for a default client; every model here has its own.
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert "OPENAI_API_KEY" not in os.environ


@pytest.fixture
async def gw(fake: FakeUpstream) -> AsyncIterator[Live]:
    """A gateway on the embedded store, providers pointed at the answering fake."""
    live = await start_live(settings_for(gateway_env("memory://", fake.url)))
    yield live
    await stop_live(live)


@pytest.fixture
async def client(gw: Live) -> AsyncIterator[openai.AsyncOpenAI]:
    """The OpenAI client the Agents SDK is given: only the base URL and key are the gateway's."""
    tenant = await gw.tenant()
    sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{gw.url}/v1", max_retries=0)
    yield sdk
    await sdk.close()


def _model(kind: str, name: str, client: openai.AsyncOpenAI) -> Model:
    if kind == "responses":
        return OpenAIResponsesModel(model=name, openai_client=client)
    return OpenAIChatCompletionsModel(model=name, openai_client=client)


def _expected(api: str | None, text: str) -> str:
    return f"Echo: {text}" if api is None else f"{api} says: {text}"


def _upstream(fake: FakeUpstream, api: str | None, count: int) -> list[Seen]:
    if api is None:
        assert fake.requests == []
    else:
        assert len(fake.requests) == count, [s.path for s in fake.requests]
    return fake.requests


models = pytest.mark.parametrize("name", list(MODELS))
kinds = pytest.mark.parametrize("kind", KINDS)


@models
@kinds
async def test_a_run(client: openai.AsyncOpenAI, fake: FakeUpstream, kind: str, name: str) -> None:
    agent = Agent(name="plain", instructions="Answer.", model=_model(kind, name, client))
    result = await Runner.run(agent, "Paris in spring", max_turns=3)
    api = MODELS[name][kind]
    assert result.final_output == _expected(api, "Paris in spring")
    for seen in _upstream(fake, api, 1):
        assert ("user", "Paris in spring") in transcript(seen.path, seen.body)


def _tool_agent(kind: str, name: str, client: openai.AsyncOpenAI) -> Agent[Any]:
    return Agent(
        name="forecaster",
        instructions="Use the tool.",
        model=_model(kind, name, client),
        tools=[weather],
        model_settings=ModelSettings(parallel_tool_calls=False),
    )


def _check_tool_calls(fake: FakeUpstream, api: str | None, prompt: str) -> None:
    seen = _upstream(fake, api, 2)
    if seen:
        first, second = seen
        assert b'"weather"' in first.raw and b"sunny in" not in first.raw
        assert f"sunny in {prompt}".encode() in second.raw


@models
@kinds
async def test_a_function_tool_round_trip(
    client: openai.AsyncOpenAI, fake: FakeUpstream, kind: str, name: str
) -> None:
    prompt = "Lyon today"
    result = await Runner.run(_tool_agent(kind, name, client), prompt, max_turns=4)
    calls = [i.raw_item for i in result.new_items if i.type == "tool_call_item"]
    outputs = [i.output for i in result.new_items if i.type == "tool_call_output_item"]
    assert len(calls) == 1 and outputs == [f"sunny in {prompt}"]
    assert f"sunny in {prompt}" in str(result.final_output)
    _check_tool_calls(fake, MODELS[name][kind], prompt)


@models
@kinds
async def test_a_streamed_run_with_a_tool(
    client: openai.AsyncOpenAI, fake: FakeUpstream, kind: str, name: str
) -> None:
    prompt = "Nice tonight"
    streamed = Runner.run_streamed(_tool_agent(kind, name, client), prompt, max_turns=4)
    deltas: list[str] = []
    kinds_seen: set[str] = set()
    async for event in streamed.stream_events():
        if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent):
            deltas.append(event.data.delta)
        elif event.type == "run_item_stream_event":
            kinds_seen.add(event.item.type)
    assert {"tool_call_item", "tool_call_output_item", "message_output_item"} <= kinds_seen
    assert len(deltas) >= 2
    assert "".join(deltas) == streamed.final_output
    assert f"sunny in {prompt}" in str(streamed.final_output)
    _check_tool_calls(fake, MODELS[name][kind], prompt)
    assert all(s.body.get("stream") or "streamGenerateContent" in s.path for s in fake.requests)


@models
@kinds
async def test_structured_output(
    client: openai.AsyncOpenAI, fake: FakeUpstream, kind: str, name: str
) -> None:
    agent = Agent(
        name="planner", instructions="Plan.", model=_model(kind, name, client), output_type=Trip
    )
    result = await Runner.run(agent, "Rome", max_turns=3)
    assert isinstance(result.final_output, Trip)
    assert result.final_output.city == "Rome"
    for seen in _upstream(fake, MODELS[name][kind], 1):
        assert b'"days"' in seen.raw  # the schema reached the provider


@models
async def test_three_turns_chained_by_previous_response_id(
    client: openai.AsyncOpenAI, fake: FakeUpstream, name: str
) -> None:
    agent = Agent(name="chat", instructions="Chat.", model=_model("responses", name, client))
    api = MODELS[name]["responses"]
    previous = None
    for n in (1, 2, 3):
        result = await Runner.run(agent, f"turn {n}", previous_response_id=previous, max_turns=3)
        assert result.final_output == _expected(api, f"turn {n}")
        previous = result.last_response_id
        assert previous
    seen = _upstream(fake, api, 3)
    if seen:
        # The gateway prepended the stored transcript: the provider saw the whole chat.
        assert transcript(seen[-1].path, seen[-1].body) == [
            ("user", "turn 1"),
            ("assistant", _expected(api, "turn 1")),
            ("user", "turn 2"),
            ("assistant", _expected(api, "turn 2")),
            ("user", "turn 3"),
        ]

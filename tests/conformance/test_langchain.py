"""LangChain against a live gateway: `ChatOpenAI` on Chat Completions and on the Responses API,
and `ChatAnthropic`, each on an OpenAI, an Anthropic and a Gemini model (answered by the fake
provider) and `local/echo`: invoke, stream, a `bind_tools` round trip and
`with_structured_output`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, SecretStr

from tests.conformance.provider import transcript
from tests.support.fake_upstream import FakeUpstream, Seen
from tests.support.gateway import Live, Tenant, gateway_env, settings_for, start_live, stop_live

# Each model, and the provider API the fake hears it in from each LangChain client (None: no
# provider is called). OpenAI serves Chat Completions clients over Chat Completions.
MODELS: dict[str, dict[str, str | None]] = {
    "gpt-5-4": {"chat": "chat", "responses": "responses", "anthropic": "responses"},
    "claude-sonnet-4-6": dict.fromkeys(("chat", "responses", "anthropic"), "messages"),
    "gemini-2-5-flash": dict.fromkeys(("chat", "responses", "anthropic"), "gemini"),
    "local/echo": dict.fromkeys(("chat", "responses", "anthropic"), None),
}
CLIENTS = ("chat", "responses", "anthropic")


class Trip(BaseModel):
    """A structured answer."""

    city: str
    days: int


@tool
def weather(location: str) -> str:
    """The weather in a place."""
    return f"sunny in {location}"


@pytest.fixture
async def gw(fake: FakeUpstream) -> AsyncIterator[Live]:
    """A gateway on the embedded store, providers pointed at the answering fake."""
    live = await start_live(settings_for(gateway_env("memory://", fake.url)))
    yield live
    await stop_live(live)


@pytest.fixture
async def tenant(gw: Live) -> Tenant:
    """An invoke key."""
    return await gw.tenant()


def _llm(client: str, model: str, gw: Live, tenant: Tenant) -> BaseChatModel:
    """A LangChain chat model given only the gateway's base URL and a key."""
    key = SecretStr(tenant.key)
    if client == "anthropic":
        return ChatAnthropic(  # type: ignore[call-arg]
            model=model, base_url=gw.url, api_key=key, max_retries=0, max_tokens=256
        )
    return ChatOpenAI(
        model=model,
        base_url=f"{gw.url}/v1",
        api_key=key,
        max_retries=0,
        use_responses_api=client == "responses",
    )


def _expected(api: str | None, text: str) -> str:
    return f"Echo: {text}" if api is None else f"{api} says: {text}"


def _upstream(fake: FakeUpstream, api: str | None, count: int) -> list[Seen]:
    if api is None:
        assert fake.requests == []
    else:
        assert len(fake.requests) == count, [s.path for s in fake.requests]
    return fake.requests


matrix = pytest.mark.parametrize(
    ("client", "model"), [(c, m) for m in MODELS for c in CLIENTS], ids=lambda v: str(v)
)


@matrix
async def test_invoke(
    gw: Live, tenant: Tenant, fake: FakeUpstream, client: str, model: str
) -> None:
    answer = await _llm(client, model, gw, tenant).ainvoke("Paris in spring")
    api = MODELS[model][client]
    assert answer.text == _expected(api, "Paris in spring")
    for seen in _upstream(fake, api, 1):
        assert transcript(seen.path, seen.body) == [("user", "Paris in spring")]


@matrix
async def test_stream(
    gw: Live, tenant: Tenant, fake: FakeUpstream, client: str, model: str
) -> None:
    pieces = [c.text async for c in _llm(client, model, gw, tenant).astream("Lyon at night")]
    api = MODELS[model][client]
    assert "".join(pieces) == _expected(api, "Lyon at night")
    assert sum(1 for p in pieces if p) >= 2  # it came as a stream
    for seen in _upstream(fake, api, 1):
        assert seen.body.get("stream") or ":streamGenerateContent" in seen.path


@matrix
async def test_a_bind_tools_round_trip(
    gw: Live, tenant: Tenant, fake: FakeUpstream, client: str, model: str
) -> None:
    llm = _llm(client, model, gw, tenant).bind_tools([weather])
    prompt = "Nice tomorrow"
    history: list[BaseMessage] = [HumanMessage(prompt)]
    called = await llm.ainvoke(history)
    assert isinstance(called, AIMessage)
    (call,) = called.tool_calls
    assert call["name"] == "weather" and call["args"] == {"location": prompt}
    result = weather.invoke(call["args"])
    history += [called, ToolMessage(result, tool_call_id=call["id"])]
    final = await llm.ainvoke(history)
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert f"sunny in {prompt}" in final.text
    seen = _upstream(fake, MODELS[model][client], 2)
    if seen:
        assert b'"weather"' in seen[0].raw and b"sunny in" not in seen[0].raw
        assert f"sunny in {prompt}".encode() in seen[1].raw


@matrix
async def test_with_structured_output(
    gw: Live, tenant: Tenant, fake: FakeUpstream, client: str, model: str
) -> None:
    structured: Any = _llm(client, model, gw, tenant).with_structured_output(Trip)
    trip = await structured.ainvoke("Rome")
    assert isinstance(trip, Trip) and trip.city == "Rome"
    for seen in _upstream(fake, MODELS[model][client], 1):
        assert b'"days"' in seen.raw  # the schema reached the provider

"""Azure OpenAI as a provider kind: the v1 API and the deployment-path API, `api-key` and Entra
ID tokens, content filters relayed; every client API through its official SDK, against
recorded Azure traffic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import openai
import orjson
import pytest

from tests.support.expected import expected
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import (
    UPSTREAM_SECRET,
    Live,
    gateway_env,
    settings_for,
    start_live,
    stop_live,
)
from tests.support.recordings import Recording, recordings_dir
from tests.support.sdk_calls import CLIENT_APIS, ask

MODEL = "azure-gpt-5-1"
DEPLOYMENT = "gpt-5-1-azure"
VERSION = "2024-10-21"


def _azure(stem: str, stream: bool, api: str = "openai-responses") -> Recording:
    """An Azure recording, read as the OpenAI wire API it is."""
    name = f"{stem}.chunks.txt" if stream else f"{stem}.json"
    return Recording(api, recordings_dir() / "azure" / name)  # type: ignore[arg-type]


def _other(folder: str, name: str) -> Recording:
    return Recording(folder, recordings_dir() / folder / name)  # type: ignore[arg-type]


async def _gateway(fake: FakeUpstream, **env: str) -> Live:
    azure = {"AZURE_OPENAI_ENDPOINT": fake.url, "AZURE_OPENAI_API_KEY": UPSTREAM_SECRET}
    return await start_live(settings_for(gateway_env("memory://", fake.url, **azure, **env)))


@pytest.fixture
async def gw(fake: FakeUpstream) -> AsyncIterator[Live]:
    """A gateway whose Azure provider is the fake, on the v1 API with an `api-key`."""
    live = await _gateway(fake)
    yield live
    await stop_live(live)


@pytest.fixture
async def key(gw: Live) -> str:
    """An invoke key."""
    return (await gw.tenant()).key


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("api", CLIENT_APIS)
async def test_every_client_api_reads_azure_responses(
    gw: Live, fake: FakeUpstream, key: str, api: str, stream: bool
) -> None:
    """Chat clients are served over Chat Completions (passthrough), the rest over Responses:
    passthrough for Responses clients, translated for Messages and Gemini clients."""
    if api == "chat":
        rec = (
            _other("openai-chat", "azure-model-router.1.chunks.txt")
            if stream
            else _azure("azure-deepseek-reasoning.1", False, "openai-chat")
        )
    else:
        rec = _azure("azure-text.1", stream)
    exp = expected(rec)
    assert exp.text
    fake.push(Scenario(recording=rec))
    got = await ask(api, gw.url, key, MODEL, stream)
    assert (got.text, got.calls) == (exp.text, exp.calls)
    assert (got.input_tokens, got.output_tokens) == (exp.usage.input, exp.usage.output)
    seen = fake.requests[-1]
    wire = "chat/completions" if api == "chat" else "responses"
    assert seen.path == f"/openai/v1/{wire}"
    assert seen.headers["api-key"] == UPSTREAM_SECRET
    assert "Authorization" not in seen.headers
    assert seen.body["model"] == DEPLOYMENT


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("api", ["messages", "gemini"])
async def test_tool_calls_translate_from_azure(
    gw: Live, fake: FakeUpstream, key: str, api: str, stream: bool
) -> None:
    """Azure speaks OpenAI's Responses wire: a recorded function call reaches the other SDKs."""
    name = "lmstudio-tool-call.1" + (".chunks.txt" if stream else ".json")
    rec = _other("openai-responses", name)
    exp = expected(rec)
    fake.push(Scenario(recording=rec))
    got = await ask(api, gw.url, key, MODEL, stream, tools=True)
    assert got.calls == exp.calls and exp.calls
    assert fake.requests[-1].body["tools"][0]["name"] == "weather"


async def test_responses_passthrough_relays_content_filters_byte_for_byte(
    gw: Live, fake: FakeUpstream, key: str
) -> None:
    rec = _azure("azure-text.1", False)
    fake.push(Scenario(recording=rec))
    assert gw.http is not None
    body = {"model": MODEL, "input": "hello"}
    headers = {"Authorization": f"Bearer {key}"}
    async with gw.http.post(f"{gw.url}/v1/responses", json=body, headers=headers) as resp:
        assert resp.status == 200
        answer = await resp.json()
    recorded = rec.body()
    assert answer["content_filters"] == recorded["content_filters"]


async def test_a_filtered_answer_is_an_answer_not_an_error(
    gw: Live, fake: FakeUpstream, key: str
) -> None:
    """Azure stops a completion its filter caught with `incomplete_details.reason` =
    `content_filter`: Messages clients get a refusal, Chat clients `content_filter`."""
    filtered = {
        **_azure("azure-text.1", False).body(),
        "status": "incomplete",
        "incomplete_details": {"reason": "content_filter"},
    }
    fake.push(Scenario(body=orjson.dumps(filtered)))
    got = await ask("messages", gw.url, key, MODEL, stream=False)
    assert got.stop == "refusal"
    chat_filtered = _azure("azure-deepseek-reasoning.1", False, "openai-chat").body()
    chat_filtered["choices"][0]["finish_reason"] = "content_filter"
    fake.push(Scenario(body=orjson.dumps(chat_filtered)))
    got = await ask("chat", gw.url, key, MODEL, stream=False)
    assert got.stop == "content_filter"


async def test_deployment_path_api_with_api_version(fake: FakeUpstream) -> None:
    live = await _gateway(fake, AZURE_OPENAI_API_VERSION=VERSION)
    try:
        key = (await live.tenant()).key
        fake.push(Scenario(recording=_azure("azure-deepseek-reasoning.1", False, "openai-chat")))
        await ask("chat", live.url, key, MODEL, stream=False)
        assert fake.requests[-1].path == (
            f"/openai/deployments/{DEPLOYMENT}/chat/completions?api-version={VERSION}"
        )
        for api in ("responses", "messages"):
            fake.push(Scenario(recording=_azure("azure-text.1", False)))
            got = await ask(api, live.url, key, MODEL, stream=False)
            assert got.text == expected(_azure("azure-text.1", False)).text
            assert fake.requests[-1].path == f"/openai/responses?api-version={VERSION}"
    finally:
        await stop_live(live)


async def test_entra_id_token_is_sent_as_a_bearer(fake: FakeUpstream, tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('[catalog.providers.azure]\nauth = "entra"\n')
    live = await _gateway(fake, EDGE_CONFIG=str(config))
    try:
        key = (await live.tenant()).key
        for api in ("responses", "gemini"):
            fake.push(Scenario(recording=_azure("azure-text.1", False)))
            await ask(api, live.url, key, MODEL, stream=False)
            seen = fake.requests[-1]
            assert seen.headers["Authorization"] == f"Bearer {UPSTREAM_SECRET}"
            assert "api-key" not in seen.headers
    finally:
        await stop_live(live)


async def test_upstream_429_reaches_the_openai_sdk_with_its_headers(
    gw: Live, fake: FakeUpstream, key: str
) -> None:
    error = {"error": {"code": "429", "message": "Rate limit is exceeded. Try again in 7 seconds."}}
    fake.push(
        Scenario(status=429, body=orjson.dumps(error), headers={"Retry-After": "7"}),
    )
    async with openai.AsyncOpenAI(api_key=key, base_url=f"{gw.url}/v1", max_retries=0) as sdk:
        with pytest.raises(openai.RateLimitError) as info:
            await sdk.responses.create(model=MODEL, input="hi")
    assert info.value.response.headers["retry-after"] == "7"

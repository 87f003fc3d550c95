"""The model list in each SDK's own shape: google-genai's `models.list()` / `models.get()`
(`GET /v1beta/models`, and `/v1/models` when the Google SDK asks there), Anthropic's
`models.list()` / `models.retrieve()` (`GET /v1/models` with `anthropic-version`), OpenAI's
unchanged. Each lists the models the caller can call from that API whose provider is
configured here."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live


def _google(live: Live, key: str, version: str = "v1beta") -> genai.Client:
    options = types.HttpOptions(
        base_url=live.url, api_version=version, retry_options=types.HttpRetryOptions(attempts=1)
    )
    return genai.Client(api_key=key, http_options=options)


@pytest.mark.parametrize("version", ["v1beta", "v1"])
async def test_google_sdk_lists_and_gets_models(gateway: Live, version: str) -> None:
    tenant = await gateway.tenant()
    sdk = _google(gateway, tenant.key, version)
    try:
        listed = {m.name: m async for m in await sdk.aio.models.list()}
        one = await sdk.aio.models.get(model="gemini-2.5-flash")
        with pytest.raises(genai_errors.ClientError) as missing:
            await sdk.aio.models.get(model="gemini-9-ultra")
    finally:
        await sdk.aio.aclose()
    assert "models/local/echo" in listed and "models/claude-sonnet-4-6" in listed
    flash = listed["models/gemini-2-5-flash"]
    assert flash.supported_actions == ["generateContent", "streamGenerateContent", "countTokens"]
    embedding = listed["models/gemini-embedding-001"]
    assert embedding.supported_actions == ["embedContent", "batchEmbedContents"]
    # Responses-only models cannot be called through Google's API: not listed there.
    assert "models/gpt-5-3-codex" not in listed
    assert one.name == "models/gemini-2-5-flash"
    assert missing.value.code == 404


async def test_google_sdk_pages_through_the_list(gateway: Live) -> None:
    tenant = await gateway.tenant()
    sdk = _google(gateway, tenant.key)
    try:
        whole = [m.name async for m in await sdk.aio.models.list()]
        paged = [m.name async for m in await sdk.aio.models.list(config={"page_size": 3})]
    finally:
        await sdk.aio.aclose()
    assert len(whole) > 3 and paged == whole


async def test_google_sdk_lists_only_configured_providers() -> None:
    live = await start_live(settings_for(gateway_env("memory://", None)))
    try:
        tenant = await live.tenant()
        sdk = _google(live, tenant.key)
        listed = [m.name async for m in await sdk.aio.models.list()]
        await sdk.aio.aclose()
    finally:
        await stop_live(live)
    assert listed == ["models/local/echo"]


async def test_anthropic_sdk_lists_models_in_its_shape(gateway: Live) -> None:
    tenant = await gateway.tenant()
    sdk = anthropic.AsyncAnthropic(api_key=tenant.key, base_url=gateway.url, max_retries=0)
    try:
        first = await sdk.models.list(limit=2)
        everything = [m.id async for m in await sdk.models.list(limit=2)]  # follows the pages
        one = await sdk.models.retrieve("claude-sonnet-4-6")
        with pytest.raises(anthropic.NotFoundError):
            await sdk.models.retrieve("text-embedding-3-small")  # not callable from Messages
    finally:
        await sdk.close()
    assert [m.id for m in first.data] == everything[:2]
    assert first.has_more and first.first_id == everything[0] and first.last_id == everything[1]
    assert {"claude-sonnet-4-6", "gpt-5-4", "gemini-2-5-flash", "local/echo"} <= set(everything)
    assert "text-embedding-3-small" not in everything and "gpt-5-3-codex" not in everything
    assert len(everything) == len(set(everything))
    assert (one.type, one.id, one.display_name) == (
        "model",
        "claude-sonnet-4-6",
        "claude-sonnet-4-6",
    )


async def test_anthropic_prefix_answers_anthropic_shape_without_the_header(gateway: Live) -> None:
    tenant = await gateway.tenant()
    assert gateway.http is not None
    async with gateway.http.get(
        f"{gateway.url}/ai-gateway/anthropic/v1/models", headers={"x-api-key": tenant.key}
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["has_more"] is False and body["data"][0]["type"] == "model"
    async with gateway.http.get(
        f"{gateway.url}/v1/models?limit=0",
        headers={"x-api-key": tenant.key, "anthropic-version": "2023-06-01"},
    ) as resp:
        refused = await resp.json()
        assert resp.status == 400
    assert refused["type"] == "error"  # Anthropic's error shape for an Anthropic caller


async def test_openai_list_is_unchanged_and_names_embedding_models(gateway: Live) -> None:
    tenant = await gateway.tenant()
    sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{gateway.url}/v1", max_retries=0)
    try:
        listed = {m.id: m async for m in sdk.models.list()}
    finally:
        await sdk.close()
    assert listed["gpt-5-4"].object == "model"
    assert listed["text-embedding-3-small"].model_extra == {
        "endpoints": ["embeddings"],
        "canonical_id": "text-embedding-3-small",
    }
    assert "embeddings" in (listed["local/echo"].model_extra or {})["endpoints"]

"""Real clients send provider-native model names: each reaches its catalog model through every
client API, an unknown name gets a 400 that names it and suggests ids, and the model list shows
only models whose provider is configured here."""

from __future__ import annotations

import contextlib

import openai
import pytest

from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live


async def test_provider_native_names_through_the_sdk(gateway: Live) -> None:
    tenant = await gateway.tenant()
    sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{gateway.url}/v1", max_retries=0)
    try:
        for name in ("echo", "local-echo", "LOCAL/ECHO", "models/local/echo"):
            reply = await sdk.chat.completions.create(
                model=name, messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.choices[0].message.content == "Echo: hi"
        with pytest.raises(openai.BadRequestError) as refused:
            await sdk.chat.completions.create(
                model="gpt-5.5-turbo", messages=[{"role": "user", "content": "hi"}]
            )
        message = refused.value.body["message"]  # type: ignore[index]
        assert "unknown model 'gpt-5.5-turbo'" in message and "GET /v1/models" in message
        assert "Did you mean" in message
        assert refused.value.response.headers.get("x-should-retry") in (None, "false")
    finally:
        await sdk.close()


async def test_the_model_list_shows_only_configured_providers(store_url: str) -> None:
    # No provider credentials: only the in-process model can be called.
    live = await start_live(settings_for(gateway_env(store_url, None)))
    try:
        tenant = await live.tenant()
        sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=0)
        listed = [m.id async for m in sdk.models.list()]
        await sdk.close()
        assert listed == ["local/echo"]
    finally:
        await stop_live(live)


async def test_openai_style_names_reach_the_openai_model(gateway: Live, fake) -> None:
    tenant = await gateway.tenant()
    sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{gateway.url}/v1", max_retries=0)
    try:
        for name in ("gpt-5.4", "openai/gpt-5.4", "openai/gpt-5-4", "gpt-5-4"):
            # The fake's answer is not the point here: which model was called is.
            with contextlib.suppress(openai.APIError):
                await sdk.chat.completions.create(
                    model=name, messages=[{"role": "user", "content": "hi"}]
                )
    finally:
        await sdk.close()
    sent = [r.body.get("model") for r in fake.requests]
    assert sent == ["gpt-5.4"] * 4, sent

"""Translated answers carry what every client API promises: a model name, a creation time and
the client API's own id style, even where the provider's answer left them out."""

from __future__ import annotations

import time

import anthropic
import openai
import orjson

from tests.support.fake_upstream import Scenario
from tests.support.gateway import Live

GEMINI_ANSWER = {  # no modelVersion, no responseId: as some Gemini answers come
    "candidates": [
        {"content": {"role": "model", "parts": [{"text": "hello"}]}, "finishReason": "STOP"}
    ],
    "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1, "totalTokenCount": 3},
}


async def test_chat_from_gemini_has_a_model_and_a_time(gateway: Live, fake) -> None:
    tenant = await gateway.tenant()
    fake.push(Scenario(body=orjson.dumps(GEMINI_ANSWER)))
    sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{gateway.url}/v1", max_retries=0)
    try:
        reply = await sdk.chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}]
        )
    finally:
        await sdk.close()
    assert reply.model == "gemini-2.5-flash"
    assert abs(reply.created - time.time()) < 3600  # a real time, not 0 (not a speed check)


async def test_messages_from_gemini_have_a_model_and_a_message_id(gateway: Live, fake) -> None:
    tenant = await gateway.tenant()
    fake.push(Scenario(body=orjson.dumps(GEMINI_ANSWER)))
    sdk = anthropic.AsyncAnthropic(api_key=tenant.key, base_url=gateway.url, max_retries=0)
    try:
        reply = await sdk.messages.create(
            model="gemini-2.5-flash",
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
        )
    finally:
        await sdk.close()
    assert reply.model == "gemini-2.5-flash"
    assert reply.id.startswith("msg_")


async def test_messages_from_an_openai_model_have_message_ids(gateway: Live) -> None:
    tenant = await gateway.tenant()
    sdk = anthropic.AsyncAnthropic(api_key=tenant.key, base_url=gateway.url, max_retries=0)
    try:
        reply = await sdk.messages.create(
            model="local/echo", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        async with sdk.messages.stream(
            model="local/echo", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            streamed = await stream.get_final_message()
    finally:
        await sdk.close()
    assert reply.id.startswith("msg_") and streamed.id.startswith("msg_")

"""Content and settings end to end: what a client sends is what the provider receives, in the
provider's own terms (images, documents, system turns, structured output, tool choice)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.matrix import call
from tests.support.recordings import recordings

PNG = "iVBORw0KGgoAAAANSUhEUg=="
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
ANSWERS = {
    "anthropic": next(r for r in recordings("anthropic") if r.name == "anthropic-text.json"),
    "gemini": next(r for r in recordings("gemini") if r.name == "google-text.json"),
    "chat": next(r for r in recordings("openai-chat") if r.name == "openai-text.json"),
}


@pytest.fixture
async def gw(fake: FakeUpstream) -> AsyncIterator[Live]:
    """A gateway on the embedded store."""
    live = await start_live(settings_for(gateway_env("memory://", fake.url)))
    yield live
    await stop_live(live)


async def _send(gw: Live, fake: FakeUpstream, api: str, path: str, body: Any, wire: str) -> Any:
    fake.push(Scenario(recording=ANSWERS[wire]))
    tenant = await gw.tenant()
    out = await call(gw, tenant.key, api, path, body)
    assert out.status == 200, out.error
    return fake.requests[-1].body


async def test_chat_images_and_schema_reach_claude(gw: Live, fake: FakeUpstream) -> None:
    body = {
        "model": "claude-sonnet-4-6",
        "messages": [
            {"role": "system", "content": "Answer in JSON."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
                ],
            },
        ],
        "response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": SCHEMA}},
        "max_completion_tokens": 300,
        "stop": ["END"],
    }
    sent = await _send(gw, fake, "chat", "/v1/chat/completions", body, "anthropic")
    assert sent["system"] == "Answer in JSON."
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "Describe"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
    ]
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert (sent["max_tokens"], sent["stop_sequences"]) == (300, ["END"])


async def test_messages_document_and_tool_choice_reach_gemini(gw: Live, fake: FakeUpstream) -> None:
    body = {
        "model": "gemini-2-5-flash",
        "max_tokens": 200,
        "system": "Be brief.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": "JVBERi0=",
                        },
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/b.png"}},
                    {"type": "text", "text": "Summarise"},
                ],
            }
        ],
        "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "lookup"},
    }
    sent = await _send(gw, fake, "messages", "/v1/messages", body, "gemini")
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://x.test/b.png"}},
        {"text": "Summarise"},
    ]
    assert sent["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}
    }
    assert sent["generationConfig"]["maxOutputTokens"] == 200


async def test_gemini_media_and_schema_reach_a_chat_server(gw: Live, fake: FakeUpstream) -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "sys"}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "What is it?"},
                    {"inlineData": {"mimeType": "image/png", "data": PNG}},
                ],
            }
        ],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseJsonSchema": SCHEMA,
            "temperature": 0.2,
        },
    }
    path = "/v1beta/models/databricks-qwen35-122b-a10b:generateContent"
    sent = await _send(gw, fake, "gemini", path, body, "chat")
    assert sent["messages"] == [
        {"role": "system", "content": "sys"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is it?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
    ]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": SCHEMA},
    }
    assert sent["temperature"] == 0.2

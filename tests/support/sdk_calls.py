"""One question asked through each client API with its official SDK, read into one shape.

The provider-kind tests (Azure, Bedrock, Vertex) ask the same thing four ways and compare the
answer with what the recording holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
import openai
from google import genai
from google.genai import types

from tests.support.matrix import WEATHER_TOOL

CLIENT_APIS = ("chat", "responses", "messages", "gemini")
PROMPT = "What is the weather in San Francisco?"


@dataclass
class SdkAnswer:
    """What a client assembled from the gateway's answer."""

    text: str = ""
    calls: list[tuple[str, Any]] = field(default_factory=list)
    reasoning: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    stop: str = ""


async def ask(
    api: str, base_url: str, key: str, model: str, stream: bool, tools: bool = False
) -> SdkAnswer:
    """Ask PROMPT of `model` through client API `api` with its SDK."""
    if api == "chat":
        return await _chat(base_url, key, model, stream, tools)
    if api == "responses":
        return await _responses(base_url, key, model, stream, tools)
    if api == "messages":
        return await _messages(base_url, key, model, stream, tools)
    return await _gemini(base_url, key, model, stream, tools)


async def _chat(base_url: str, key: str, model: str, stream: bool, tools: bool) -> SdkAnswer:
    out = SdkAnswer()
    extra: dict[str, Any] = (
        {"tools": [{"type": "function", "function": WEATHER_TOOL}]} if tools else {}
    )
    messages: Any = [{"role": "user", "content": PROMPT}]
    async with openai.AsyncOpenAI(api_key=key, base_url=f"{base_url}/v1", max_retries=0) as sdk:
        if not stream:
            resp = await sdk.chat.completions.create(model=model, messages=messages, **extra)
            message = resp.choices[0].message
            out.text = message.content or ""
            out.calls = [
                (c.function.name, json.loads(c.function.arguments))  # type: ignore[union-attr]
                for c in message.tool_calls or []
            ]
            out.reasoning = (message.model_extra or {}).get("reasoning_content") or ""
            out.stop = resp.choices[0].finish_reason
            assert resp.usage is not None
            out.input_tokens, out.output_tokens = (
                resp.usage.prompt_tokens,
                resp.usage.completion_tokens,
            )
            return out
        chunks = await sdk.chat.completions.create(
            model=model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            **extra,
        )
        args: dict[int, list[str]] = {}
        async for chunk in chunks:
            if chunk.usage is not None:
                out.input_tokens = chunk.usage.prompt_tokens
                out.output_tokens = chunk.usage.completion_tokens
            for choice in chunk.choices:
                out.text += choice.delta.content or ""
                out.reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
                out.stop = choice.finish_reason or out.stop
                for tc in choice.delta.tool_calls or []:
                    entry = args.setdefault(tc.index, ["", ""])
                    entry[0] += (tc.function.name if tc.function else None) or ""
                    entry[1] += (tc.function.arguments if tc.function else None) or ""
        out.calls = [(name, json.loads(a or "{}")) for name, a in args.values()]
        return out


async def _responses(base_url: str, key: str, model: str, stream: bool, tools: bool) -> SdkAnswer:
    out = SdkAnswer()
    extra: dict[str, Any] = {"tools": [{"type": "function", **WEATHER_TOOL}]} if tools else {}
    async with openai.AsyncOpenAI(api_key=key, base_url=f"{base_url}/v1", max_retries=0) as sdk:
        if stream:
            async with sdk.responses.stream(model=model, input=PROMPT, **extra) as events:
                resp = await events.get_final_response()
        else:
            resp = await sdk.responses.create(model=model, input=PROMPT, **extra)
    for item in resp.output:
        if item.type == "message":
            out.text += "".join(getattr(p, "text", "") for p in item.content)
        elif item.type == "function_call":
            out.calls.append((item.name, json.loads(item.arguments or "{}")))
        elif item.type == "reasoning":
            parts = item.content or item.summary or []
            out.reasoning += "".join(p.text for p in parts)
    out.stop = resp.status or ""
    assert resp.usage is not None
    out.input_tokens, out.output_tokens = resp.usage.input_tokens, resp.usage.output_tokens
    return out


async def _messages(base_url: str, key: str, model: str, stream: bool, tools: bool) -> SdkAnswer:
    extra: dict[str, Any] = {}
    if tools:
        extra["tools"] = [
            {
                "name": WEATHER_TOOL["name"],
                "description": WEATHER_TOOL["description"],
                "input_schema": WEATHER_TOOL["parameters"],
            }
        ]
    messages: Any = [{"role": "user", "content": PROMPT}]
    async with anthropic.AsyncAnthropic(api_key=key, base_url=base_url, max_retries=0) as sdk:
        if stream:
            async with sdk.messages.stream(
                model=model, max_tokens=1024, messages=messages, **extra
            ) as events:
                message = await events.get_final_message()
        else:
            message = await sdk.messages.create(
                model=model, max_tokens=1024, messages=messages, **extra
            )
    out = SdkAnswer(stop=message.stop_reason or "")
    for block in message.content:
        if block.type == "text":
            out.text += block.text
        elif block.type == "tool_use":
            out.calls.append((block.name, block.input))
        elif block.type == "thinking":
            out.reasoning += block.thinking
    usage = message.usage
    cached = (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    out.input_tokens, out.output_tokens = usage.input_tokens + cached, usage.output_tokens
    return out


async def _gemini(base_url: str, key: str, model: str, stream: bool, tools: bool) -> SdkAnswer:
    declared = [types.Tool(function_declarations=[types.FunctionDeclaration(**WEATHER_TOOL)])]
    config = types.GenerateContentConfig(
        tools=declared if tools else None,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    options = types.HttpOptions(base_url=base_url, retry_options=types.HttpRetryOptions(attempts=1))
    sdk = genai.Client(api_key=key, http_options=options)
    try:
        if stream:
            chunks = [
                c
                async for c in await sdk.aio.models.generate_content_stream(
                    model=model, contents=PROMPT, config=config
                )
            ]
        else:
            chunks = [
                await sdk.aio.models.generate_content(model=model, contents=PROMPT, config=config)
            ]
    finally:
        await sdk.aio.aclose()
    out = SdkAnswer()
    for chunk in chunks:
        for candidate in chunk.candidates or []:
            if candidate.finish_reason is not None:
                out.stop = candidate.finish_reason.value
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.thought:
                    out.reasoning += part.text or ""
                elif part.text:
                    out.text += part.text
                elif part.function_call is not None:
                    out.calls.append((part.function_call.name, dict(part.function_call.args or {})))
        usage = chunk.usage_metadata
        if usage is not None and usage.prompt_token_count is not None:
            out.input_tokens = usage.prompt_token_count
            out.output_tokens = (usage.candidates_token_count or 0) + (
                usage.thoughts_token_count or 0
            )
    return out

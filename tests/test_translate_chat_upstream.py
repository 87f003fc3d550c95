"""The Chat Completions provider adapter: neutral requests out, chat answers back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from edge.errors import GatewayError
from edge.sse import SSEEvent
from edge.translate import neutral as n
from edge.translate.chat_inbound import ChatStreamDecoder, chat_response
from edge.translate.chat_outbound import chat_body
from edge.translate.chat_upstream import decode_chat_stream
from edge.usage import Usage
from policies.catalog import Provider
from tests.support.recordings import recordings

OPENAI = Provider("openai", "openai", ("chat",), "https://x/v1", "sk")
COMPATIBLE = Provider("vllm", "openai-compatible", ("chat",), "https://y/v1", None)
CHAT = {r.name: r for r in recordings("openai-chat")}


def _req(*items: n.Item, **fields: Any) -> n.Request:
    return n.Request(model="m", items=list(items), **fields)


def _user(*parts: n.Part) -> n.Message:
    return n.Message(role="user", parts=list(parts))


def test_body_roles_media_and_limits_per_provider_kind() -> None:
    req = _req(
        n.Message(role="developer", parts=[n.TextPart("rules")]),
        _user(
            n.TextPart("see"),
            n.ImagePart(data="AAAA", media_type="image/png", detail="low"),
            n.FilePart(data="JVBE", media_type="application/pdf", filename="a.pdf"),
        ),
        max_output_tokens=64,
    )
    body = chat_body(req, OPENAI, stream=True)
    assert body["messages"][0] == {"role": "developer", "content": "rules"}
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "see"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
        },
    ]
    assert body["max_completion_tokens"] == 64
    assert body["stream_options"] == {"include_usage": True}
    compatible = chat_body(req, COMPATIBLE, stream=False)
    assert compatible["messages"][0]["role"] == "system" and compatible["max_tokens"] == 64
    assert "stream" not in compatible


def test_body_assistant_turn_merges_and_reasoning_only_in_the_tool_loop() -> None:
    req = _req(
        _user(n.TextPart("first")),
        n.Reasoning(text="old thoughts"),
        n.Message(role="assistant", parts=[n.TextPart("answer")]),
        _user(n.TextPart("weather?")),
        n.Reasoning(text="need the tool"),
        n.Message(role="assistant", parts=[n.TextPart("Checking.")]),
        n.ToolCall(call_id="c1", name="weather", arguments='{"city":"Paris"}'),
        n.ToolCall(call_id="c2", name="time", arguments=""),
        n.ToolResult(call_id="c1", output="sunny"),
        n.ToolResult(call_id="c2", output=[n.TextPart("noon")]),
    )
    messages = chat_body(req, COMPATIBLE, stream=False)["messages"]
    assert messages[1] == {"role": "assistant", "content": "answer"}
    assert messages[3] == {
        "role": "assistant",
        "content": "Checking.",
        "reasoning_content": "need the tool",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
            },
            {"id": "c2", "type": "function", "function": {"name": "time", "arguments": "{}"}},
        ],
    }
    assert messages[4:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "noon"},
    ]


def test_body_tools_formats_and_reasoning() -> None:
    req = _req(
        _user(n.TextPart("q")),
        tools=[n.ToolSpec(name="f", description="d", parameters=None, strict=True)],
        tool_choice="f",
        parallel_tool_calls=False,
        response_format=n.ResponseFormat(type="json_schema", name="out", schema={"type": "object"}),
        reasoning=n.ReasoningConfig(budget_tokens=3000),
        stop=["END"],
    )
    body = chat_body(req, OPENAI, stream=False)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {"type": "object", "properties": {}},
                "description": "d",
                "strict": True,
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert body["parallel_tool_calls"] is False and body["stop"] == ["END"]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}},
    }
    assert body["reasoning_effort"] == "medium"  # 3000 tokens is a medium budget


@pytest.mark.parametrize(
    ("req", "provider", "what"),
    [
        (_req(_user(n.FilePart(url="https://x/a.pdf"))), OPENAI, "file given by URL"),
        (
            _req(
                _user(n.TextPart("q")),
                n.ToolCall("c", "f"),
                n.ToolResult("c", [n.ImagePart(url="https://x/i.png")]),
            ),
            OPENAI,
            "tool result",
        ),
        (
            _req(_user(n.TextPart("q")), hosted_tools=[n.HostedTool(type="web_search_20250305")]),
            OPENAI,
            "web_search_20250305",
        ),
        (_req(_user(n.TextPart("q")), extra={"top_k": 5}), OPENAI, "top_k"),
    ],
)
def test_body_refuses_what_chat_cannot_carry(req: n.Request, provider: Provider, what: str) -> None:
    with pytest.raises(GatewayError) as info:
        chat_body(req, provider, stream=False)
    assert info.value.status == 400 and what in info.value.message


def test_top_k_reaches_compatible_servers() -> None:
    assert (
        chat_body(_req(_user(n.TextPart("q")), extra={"top_k": 5}), COMPATIBLE, False)["top_k"] == 5
    )


def test_response_reasoning_refusal_and_usage() -> None:
    resp = chat_response(CHAT["deepseek-tool-call.json"].body())
    assert [type(i).__name__ for i in resp.items] == ["Reasoning", "ToolCall"]
    assert resp.stop_reason == "tool_calls"
    assert resp.usage == Usage(
        input_tokens=339, output_tokens=92, cached_tokens=320, reasoning_tokens=48
    )
    refused = chat_response(
        {"choices": [{"message": {"content": None, "refusal": "No."}, "finish_reason": "stop"}]}
    )
    assert refused.stop_reason == "refusal"
    assert refused.items == [n.Message(role="assistant", refusal="No.")]
    vllm = chat_response(
        {"choices": [{"message": {"content": "x", "reasoning": "r"}, "finish_reason": "length"}]}
    )
    assert vllm.items[0] == n.Reasoning(text="r") and vllm.stop_reason == "length"


async def _decode(raw: bytes) -> list[n.Event]:
    from edge.sse import SSEParser

    async def source() -> AsyncIterator[SSEEvent]:
        for event in SSEParser().feed(raw):
            yield event
            await asyncio.sleep(0)

    return [e async for e in decode_chat_stream(source())]


async def test_stream_decoding_of_recordings() -> None:
    azure = await _decode(CHAT["azure-model-router.1.chunks.txt"].wire())
    assert isinstance(azure[0], n.Start) and azure[0].id.startswith("chatcmpl-")
    finish = azure[-1]
    assert isinstance(finish, n.Finish) and finish.usage is not None
    assert finish.usage.reasoning_tokens == 64
    claude = await _decode(CHAT["anthropic-fallback-tool-call.sse"].wire())
    starts = [e for e in claude if isinstance(e, n.ToolCallStart)]
    assert [(s.index, s.name) for s in starts] == [(0, "read_file")]  # provider index 1 -> 0
    deepseek = await _decode(CHAT["deepseek-reasoning.chunks.txt"].wire())
    kinds = [type(e).__name__ for e in deepseek]
    assert kinds.index("ReasoningDone") < kinds.index("TextDelta")


async def test_stream_ends() -> None:
    with pytest.raises(GatewayError) as info:
        await _decode(b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n')
    assert info.value.code == "upstream_interrupted"
    tail = await _decode(
        b'data: {"id":"1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c",'
        b'"function":{"name":"f"}}]},"finish_reason":"tool_calls"}]}\n\n'
    )
    assert tail[-2:] == [
        n.ToolCallDelta(index=0, arguments="{}"),
        n.Finish(stop_reason="tool_calls", usage=None),
    ]
    with pytest.raises(GatewayError) as info:
        ChatStreamDecoder().feed({"error": {"message": "quota", "code": 429}})
    assert info.value.status == 429

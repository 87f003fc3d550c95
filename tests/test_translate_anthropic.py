"""The Anthropic Messages adapters: client requests in, answers out, and Claude as a provider."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from edge.errors import GatewayError
from edge.sse import SSEEvent
from edge.translate import neutral as n
from edge.translate.anthropic_inbound import AnthropicStreamDecoder, message_response
from edge.translate.anthropic_outbound import JSON_TOOL, messages_body
from edge.translate.anthropic_render import (
    MessagesStreamRenderer,
    messages_stream_error,
    render_message,
)
from edge.translate.anthropic_request import parse_messages_request
from edge.translate.anthropic_upstream import decode_messages_stream
from edge.usage import Usage
from policies.catalog import Model
from tests.support.readers import read_messages_stream
from tests.support.recordings import recordings

MODEL = Model(id="claude", provider="anthropic", upstream="claude-x")
PNG = "iVBORw0KGgo="


def _request(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]} | (
        fields
    )


def _user(*items: n.Item) -> n.Request:
    return n.Request(model="claude-x", items=list(items))


# Client requests -------------------------------------------------------------------------


def test_request_content_blocks_become_neutral_parts() -> None:
    req = parse_messages_request(
        _request(
            system=[{"type": "text", "text": "Be brief."}],
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Look"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://x/y.jpg"}},
                        {
                            "type": "document",
                            "source": {
                                "type": "base64",
                                "media_type": "application/pdf",
                                "data": "JVBE",
                            },
                        },
                    ],
                },
            ],
        )
    )
    system, user = req.items
    assert isinstance(system, n.Message) and system.role == "system" and system.text == "Be brief."
    assert isinstance(user, n.Message)
    assert [type(p).__name__ for p in user.parts] == [
        "TextPart",
        "ImagePart",
        "ImagePart",
        "FilePart",
    ]
    assert user.parts[1] == n.ImagePart(data=PNG, media_type="image/png")
    assert user.parts[2] == n.ImagePart(url="https://x/y.jpg")


def test_request_tool_turns_and_thinking() -> None:
    req = parse_messages_request(
        _request(
            messages=[
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "call it", "signature": "sig"},
                        {"type": "redacted_thinking", "data": "opaque"},
                        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": "sunny",
                            "is_error": True,
                        },
                    ],
                },
            ],
            tools=[
                {"name": "weather", "input_schema": {"type": "object"}},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
            ],
            tool_choice={"type": "any", "disable_parallel_tool_use": True},
            thinking={"type": "enabled", "budget_tokens": 3000},
        )
    )
    assert req.items[1:] == [
        n.Reasoning(text="call it", signature="sig"),
        n.Reasoning(redacted=True, encrypted="opaque"),
        n.ToolCall(call_id="toolu_1", name="weather", arguments="{}"),
        n.ToolResult(call_id="toolu_1", output="sunny", is_error=True),
    ]
    assert req.tool_choice == "required" and req.parallel_tool_calls is False
    assert req.hosted_tools == [
        n.HostedTool(type="web_search_20250305", config={"name": "web_search", "max_uses": 2})
    ]
    assert req.reasoning == n.ReasoningConfig(effort="medium", budget_tokens=3000)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"container": "c1"}, "container"),
        ({"mcp_servers": [{"url": "x"}]}, "mcp_servers"),
        (
            {"messages": [{"role": "user", "content": [{"type": "search_result"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            },
            "messages[0].content[0].source.type",
        ),
        ({"thinking": {"type": "enabled"}}, "thinking"),
    ],
)
def test_request_errors_name_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as info:
        parse_messages_request(_request(**fields))
    assert info.value.status == 400 and info.value.param == param


def test_request_structured_output() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    for fields in (
        {"output_config": {"format": {"type": "json_schema", "schema": schema}}},
        {"output_format": {"type": "json_schema", "schema": schema}},
    ):
        fmt = parse_messages_request(_request(**fields)).response_format
        assert fmt is not None and fmt.type == "json_schema" and fmt.schema == schema


# Claude as a provider ----------------------------------------------------------------------


def test_body_system_turns_and_tool_results_first() -> None:
    req = _user(
        n.Message(role="system", parts=[n.TextPart("A")]),
        n.Message(role="developer", parts=[n.TextPart("B")]),
        n.Message(role="user", parts=[n.TextPart("q")]),
        n.Reasoning(text="unsigned, from another provider"),
        n.ToolCall(call_id="call.1/x", name="f", arguments='{"a":1}'),
        n.Message(role="user", parts=[n.TextPart("also this")]),
        n.ToolResult(call_id="call.1/x", output="done"),
    )
    body, json_tool = messages_body(req, MODEL, stream=False)
    assert body["system"] == "A\n\nB" and json_tool is False
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1_x", "name": "f", "input": {"a": 1}}
    ]
    assert [b["type"] for b in body["messages"][2]["content"]] == ["tool_result", "text"]
    assert body["messages"][2]["content"][0]["tool_use_id"] == "call_1_x"


def test_body_thinking_budgets_and_sampling() -> None:
    req = _user(n.Message(role="user", parts=[n.TextPart("q")]))
    req.reasoning, req.temperature = n.ReasoningConfig(effort="high"), 0.3
    body, _ = messages_body(req, MODEL, stream=True)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert body["max_tokens"] > 16384 and "temperature" not in body and body["stream"] is True
    req.max_output_tokens = 5000
    body, _ = messages_body(req, MODEL, stream=False)
    assert (body["max_tokens"], body["thinking"]["budget_tokens"]) == (5000, 4999)
    req.max_output_tokens = 800  # too small for the minimum budget: no thinking
    body, _ = messages_body(req, MODEL, stream=False)
    assert "thinking" not in body and body["temperature"] == 0.3
    req.reasoning = n.ReasoningConfig(effort="none")
    assert "thinking" not in messages_body(req, MODEL, stream=False)[0]


def test_thinking_is_left_off_when_claude_would_refuse_it() -> None:
    tools = [n.ToolSpec(name="f", parameters={"type": "object"})]
    forced = n.Request(
        model="c",
        items=[n.Message(role="user", parts=[n.TextPart("q")])],
        tools=tools,
        tool_choice="f",
        reasoning=n.ReasoningConfig(effort="low"),
    )
    body, _ = messages_body(forced, MODEL, stream=False)
    assert "thinking" not in body and body["tool_choice"] == {"type": "tool", "name": "f"}
    unsigned_loop = n.Request(
        model="c",
        items=[
            n.Message(role="user", parts=[n.TextPart("q")]),
            n.Reasoning(text="no signature"),
            n.ToolCall(call_id="c1", name="f"),
            n.ToolResult(call_id="c1", output="ok"),
        ],
        tools=tools,
        reasoning=n.ReasoningConfig(effort="low"),
    )
    assert "thinking" not in messages_body(unsigned_loop, MODEL, stream=False)[0]
    unsigned_loop.items[1] = n.Reasoning(text="signed", signature="s")
    body, _ = messages_body(unsigned_loop, MODEL, stream=False)
    assert body["thinking"]["budget_tokens"] == 2048
    assert body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "signed",
        "signature": "s",
    }


def test_body_structured_output_and_json_tool() -> None:
    req = _user(n.Message(role="user", parts=[n.TextPart("q")]))
    req.response_format = n.ResponseFormat(type="json_schema", schema={"type": "object"})
    body, json_tool = messages_body(req, MODEL, stream=False)
    assert body["output_config"] == {
        "format": {"type": "json_schema", "schema": {"type": "object"}}
    }
    assert json_tool is False
    req.response_format = n.ResponseFormat(type="json_object")
    body, json_tool = messages_body(req, MODEL, stream=False)
    assert json_tool and body["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
    answer = {
        "content": [{"type": "tool_use", "id": "t", "name": JSON_TOOL, "input": {"a": 1}}],
        "stop_reason": "tool_use",
        "usage": {},
    }
    resp = message_response(answer, json_tool=True)
    assert resp.items == [n.Message(role="assistant", parts=[n.TextPart('{"a":1}')])]
    assert resp.stop_reason == "stop"


def test_body_media_and_unsupported_files() -> None:
    req = _user(
        n.Message(
            role="user",
            parts=[
                n.ImagePart(url="https://x/a.png"),
                n.FilePart(data="JVBE", media_type="application/pdf"),
            ],
        )
    )
    content = messages_body(req, MODEL, stream=False)[0]["messages"][0]["content"]
    assert content[0] == {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}}
    assert content[1]["type"] == "document"
    assert content[1]["source"]["media_type"] == "application/pdf"
    req = _user(n.Message(role="user", parts=[n.FilePart(data="eA==", media_type="text/csv")]))
    with pytest.raises(GatewayError) as info:
        messages_body(req, MODEL, stream=False)
    assert info.value.status == 400 and "text/csv" in info.value.message


def test_response_stop_reasons_refusal_and_usage() -> None:
    rec = next(r for r in recordings("anthropic") if r.name == "anthropic-refusal.json")
    resp = message_response(rec.body())
    assert resp.stop_reason == "refusal"
    assert resp.items == [
        n.Message(role="assistant", refusal=rec.body()["stop_details"]["explanation"])
    ]
    usage = message_response(
        {
            "content": [],
            "stop_reason": "max_tokens",
            "usage": {
                "input_tokens": 10,
                "cache_read_input_tokens": 90,
                "cache_creation_input_tokens": 5,
                "output_tokens": 7,
                "output_tokens_details": {"thinking_tokens": 3},
            },
        }
    )
    assert usage.stop_reason == "length"
    assert usage.usage == Usage(
        input_tokens=105,
        output_tokens=7,
        cached_tokens=90,
        reasoning_tokens=3,
        cache_write_tokens=5,
    )


async def _decode(lines: list[dict[str, Any]]) -> list[n.Event]:
    async def source() -> AsyncIterator[SSEEvent]:
        for line in lines:
            yield SSEEvent(raw=b"", event=line["type"], data=orjson.dumps(line).decode())
            await asyncio.sleep(0)

    return [e async for e in decode_messages_stream(source())]


@pytest.mark.parametrize("name", ["duplicate-message-start", "spliced-message-start"])
async def test_malformed_streams_raise(name: str) -> None:
    rec = next(r for r in recordings("anthropic") if r.name.startswith(name))
    with pytest.raises(GatewayError) as info:
        await _decode(rec.events())
    assert info.value.status == 502 and "message_start" in info.value.message


async def test_stream_without_message_stop_is_interrupted() -> None:
    rec = next(r for r in recordings("anthropic") if r.name == "anthropic-text.chunks.txt")
    with pytest.raises(GatewayError) as info:
        await _decode(rec.events()[:-1])
    assert info.value.code == "upstream_interrupted"


def test_stream_error_event_maps_status() -> None:
    decoder = AnthropicStreamDecoder()
    with pytest.raises(GatewayError) as info:
        decoder.feed(
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )
    assert info.value.status == 503


async def test_no_argument_tool_call_gets_an_empty_object() -> None:
    rec = next(r for r in recordings("anthropic") if r.name == "anthropic-tool-no-args.chunks.txt")
    events = await _decode(rec.events())
    deltas = [e for e in events if isinstance(e, n.ToolCallDelta)]
    assert deltas == [n.ToolCallDelta(index=0, arguments="{}")]
    assert isinstance(events[-1], n.Finish) and events[-1].stop_reason == "tool_calls"


# Rendering for Messages clients ------------------------------------------------------------


def test_render_message_usage_and_blocks() -> None:
    resp = n.Response(
        id="msg_1",
        model="m",
        items=[
            n.Reasoning(text="think", signature="s"),
            n.Message(role="assistant", parts=[n.TextPart("hi")]),
            n.ToolCall(call_id="c", name="f", arguments='{"x":1}'),
        ],
        stop_reason="tool_calls",
        usage=Usage(input_tokens=100, output_tokens=9, cached_tokens=60, reasoning_tokens=4),
    )
    body = render_message(resp)
    assert [b["type"] for b in body["content"]] == ["thinking", "text", "tool_use"]
    assert body["content"][2]["input"] == {"x": 1} and body["stop_reason"] == "tool_use"
    assert body["usage"] == {
        "input_tokens": 40,
        "output_tokens": 9,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 60,
        "output_tokens_details": {"thinking_tokens": 4},
    }


def test_stream_renderer_keeps_block_order_and_indexes() -> None:
    renderer = MessagesStreamRenderer()
    events: list[n.Event] = [
        n.Start(id="msg", model="m"),
        n.ReasoningDelta("hmm"),
        n.ReasoningDone(signature="sig"),
        n.TextDelta("a"),
        n.TextDelta("b"),
        n.ToolCallStart(index=0, call_id="c0", name="f"),
        n.ToolCallDelta(index=0, arguments='{"q":'),
        n.ToolCallStart(index=1, call_id="c1", name="g"),
        n.ToolCallDelta(index=0, arguments="1}"),  # a late delta for an earlier call
        n.ToolCallDelta(index=1, arguments="{}"),
        n.RefusalDelta("no"),
        n.Finish(stop_reason="tool_calls", usage=Usage(input_tokens=5, output_tokens=6)),
    ]
    raw = b"".join(renderer.feed(e) for e in events) + renderer.close()
    answer = read_messages_stream(raw)
    assert answer.text == "ab" and answer.reasoning == "hmm" and answer.signatures == ["sig"]
    assert answer.calls == [("f", {"q": 1}), ("g", {})]
    assert answer.finish == "tool_use" and (answer.usage.input, answer.usage.output) == (5, 6)
    delta = orjson.loads(next(d for name, d in answer.raw if name == "message_delta"))
    assert delta["delta"]["stop_details"]["explanation"] == "no"


def test_stream_error_is_an_anthropic_error_event() -> None:
    raw = messages_stream_error(GatewayError(429, "slow down"))
    assert raw.startswith(b"event: error\ndata: ")
    assert orjson.loads(raw.split(b"data: ")[1]) == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }

"""The Gemini adapters: client requests in, answers out, and Gemini as a provider."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from edge.errors import GatewayError
from edge.sse import SSEEvent
from edge.translate import neutral as n
from edge.translate.gemini_inbound import GeminiStreamDecoder, gemini_response, set_path
from edge.translate.gemini_outbound import SKIP_SIGNATURE, gemini_body
from edge.translate.gemini_render import GeminiStreamRenderer, render_gemini
from edge.translate.gemini_request import parse_gemini_request
from edge.translate.gemini_schema import to_json_schema
from edge.translate.gemini_upstream import (
    decode_gemini_stream,
    first_call_events,
    first_call_only,
)
from edge.usage import Usage
from tests.support.readers import read_gemini_array, read_gemini_stream
from tests.support.recordings import recordings

GEMINI = {r.name: r for r in recordings("gemini")}


def _parse(body: dict[str, Any], stream: bool = False) -> n.Request:
    return parse_gemini_request(body, "gemini-2.5-flash", stream)


def _user(text: str = "hi") -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


# Client requests -------------------------------------------------------------------------


def test_request_parts_roles_and_proto_field_names() -> None:
    req = _parse(
        {
            "system_instruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"text": "Look"},
                        {"inline_data": {"mime_type": "image/png", "data": "AAAA"}},
                        {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
                        {"fileData": {"fileUri": "https://x/y.jpg", "mimeType": "image/jpeg"}},
                    ],
                }
            ],
            "generationConfig": {"max_output_tokens": 50, "stopSequences": ["END"], "topK": 3},
        }
    )
    system, user = req.items
    assert isinstance(system, n.Message) and system.role == "system"
    assert isinstance(user, n.Message)
    assert user.parts == [
        n.TextPart("Look"),
        n.ImagePart(data="AAAA", media_type="image/png"),
        n.FilePart(data="JVBE", media_type="application/pdf"),
        n.ImagePart(url="https://x/y.jpg", media_type="image/jpeg"),
    ]
    assert (req.max_output_tokens, req.stop, req.extra) == (50, ["END"], {"top_k": 3})


def test_request_calls_pair_with_responses_by_id_then_name() -> None:
    req = _parse(
        {
            "contents": [
                _user(),
                {
                    "role": "model",
                    "parts": [
                        {"text": "Let me ", "thought": True},
                        {"text": "check.", "thought": True, "thoughtSignature": "T"},
                        {
                            "functionCall": {"name": "weather", "args": {"city": "A"}},
                            "thoughtSignature": "S",
                        },
                        {"functionCall": {"name": "weather", "args": {"city": "B"}, "id": "x9"}},
                    ],
                },
                {
                    "role": "user",
                    "parts": [
                        {"functionResponse": {"name": "weather", "id": "x9", "response": {"t": 2}}},
                        {"functionResponse": {"name": "weather", "response": {"t": 1}}},
                    ],
                },
            ]
        }
    )
    assert req.items[1:] == [
        n.Reasoning(text="Let me check.", signature="T"),
        n.Reasoning(signature="S"),
        n.ToolCall(call_id="call_1", name="weather", arguments='{"city":"A"}'),
        n.ToolCall(call_id="x9", name="weather", arguments='{"city":"B"}'),
        n.ToolResult(call_id="x9", output='{"t":2}', name="weather"),
        n.ToolResult(call_id="call_1", output='{"t":1}', name="weather"),
    ]


def test_request_tools_config_and_structured_output() -> None:
    req = _parse(
        {
            "contents": [_user()],
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "f",
                            "parameters": {
                                "type": "OBJECT",
                                "properties": {"q": {"type": "STRING", "nullable": True}},
                            },
                        }
                    ]
                },
                {"googleSearch": {}},
            ],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseSchema": {"type": "ARRAY", "items": {"type": "INTEGER"}},
                "thinkingConfig": {"thinkingLevel": "HIGH"},
            },
        }
    )
    assert req.tools[0].parameters == {
        "type": "object",
        "properties": {"q": {"type": ["string", "null"]}},
    }
    assert req.hosted_tools == [n.HostedTool(type="googleSearch")]
    assert req.tool_choice == "f"
    assert req.response_format == n.ResponseFormat(
        type="json_schema", name="response", schema={"type": "array", "items": {"type": "integer"}}
    )
    assert req.reasoning == n.ReasoningConfig(effort="high")
    budget = _parse(
        {"contents": [_user()], "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}
    )
    assert budget.reasoning == n.ReasoningConfig(effort="none")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"contents": []}, "contents"),
        (
            {"contents": [{"role": "user", "parts": [{"executableCode": {"code": "1"}}]}]},
            "contents[0].parts[0]",
        ),
        ({"contents": [_user()], "generationConfig": {"candidateCount": 2}}, "generationConfig"),
        (
            {"contents": [_user()], "generationConfig": {"responseModalities": ["IMAGE"]}},
            "responseModalities",
        ),
        ({"contents": [_user()], "cachedContent": "cachedContents/1"}, "cachedContent"),
        ({"contents": [_user()], "tools": [{"computerUse": {}}]}, "tools[0].computerUse"),
    ],
)
def test_request_errors_name_what_is_unsupported(body: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as info:
        _parse(body)
    assert info.value.status == 400 and info.value.param == param


# Gemini as a provider ----------------------------------------------------------------------


def test_body_places_signatures_where_gemini_wants_them() -> None:
    req = n.Request(
        model="gemini-3-pro",
        items=[
            n.Message(role="system", parts=[n.TextPart("sys")]),
            n.Message(role="user", parts=[n.TextPart("q")]),
            n.Reasoning(text="thought text is not sent back", signature="SIG"),
            n.ToolCall(call_id="a", name="f", arguments='{"x":1}'),
            n.ToolCall(call_id="b", name="f", arguments="{}"),
            n.ToolResult(call_id="a", output='{"ok":true}'),
            n.ToolResult(call_id="b", output="plain text"),
            n.ToolCall(call_id="c", name="g", arguments="{}"),  # from a client that lost it
            n.ToolResult(call_id="c", output="[1,2]"),
        ],
    )
    body = gemini_body(req)
    assert body["systemInstruction"] == {"parts": [{"text": "sys"}]}
    model_turn, results, second, _ = body["contents"][1:]
    assert model_turn["parts"] == [
        {"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "SIG"},
        {"functionCall": {"name": "f", "args": {}}},
    ]
    assert [p["functionResponse"] for p in results["parts"]] == [
        {"name": "f", "response": {"ok": True}},
        {"name": "f", "response": {"result": "plain text"}},
    ]
    assert second["parts"][0]["thoughtSignature"] == SKIP_SIGNATURE
    assert body["contents"][4]["parts"][0]["functionResponse"]["response"] == {"result": [1, 2]}


def test_body_generation_config_per_model_family() -> None:
    req = n.Request(
        model="gemini-2.5-flash",
        items=[n.Message(role="user", parts=[n.TextPart("q")])],
        reasoning=n.ReasoningConfig(effort="low"),
        response_format=n.ResponseFormat(type="json_schema", schema={"type": "object"}),
        tools=[n.ToolSpec(name="f", parameters={"type": "object"})],
        tool_choice="required",
        max_output_tokens=99,
    )
    body = gemini_body(req)
    assert body["generationConfig"] == {
        "maxOutputTokens": 99,
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
    }
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"] == {"type": "object"}
    req.model = "gemini-3-pro-preview"
    assert gemini_body(req)["generationConfig"]["thinkingConfig"] == {
        "thinkingLevel": "low",
        "includeThoughts": True,
    }


def test_body_refuses_what_gemini_cannot_take() -> None:
    orphan = n.Request(
        model="g",
        items=[n.Message(role="user", parts=[n.TextPart("q")]), n.ToolResult("x", "1")],
    )
    with pytest.raises(GatewayError, match="id of an earlier call"):
        gemini_body(orphan)
    hosted = n.Request(
        model="g",
        items=[n.Message(role="user", parts=[n.TextPart("q")])],
        hosted_tools=[n.HostedTool(type="web_search_preview")],
    )
    with pytest.raises(GatewayError, match="web_search_preview"):
        gemini_body(hosted)


def test_response_finish_reasons_and_blocks() -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "SAFETY"}]}
    assert gemini_response(body).stop_reason == "content_filter"
    body["candidates"][0]["finishReason"] = "MAX_TOKENS"
    assert gemini_response(body).stop_reason == "length"
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {}}
    assert gemini_response(blocked).stop_reason == "content_filter"
    tool = gemini_response(GEMINI["google-tool-call.json"].body())
    assert tool.stop_reason == "tool_calls"
    assert isinstance(tool.items[0], n.Reasoning) and tool.items[0].signature
    assert tool.usage == Usage(input_tokens=29, output_tokens=908, reasoning_tokens=893)


def test_json_paths_for_streamed_arguments() -> None:
    args: dict[str, Any] = {}
    set_path(args, "$.a.b[1].c", "x")
    set_path(args, "$['d e']", 2)
    set_path(args, "$.a.b[0]", True)
    assert args == {"a": {"b": [True, {"c": "x"}]}, "d e": 2}
    with pytest.raises(GatewayError):
        set_path(args, "$", 1)


async def _decode(chunks: list[dict[str, Any]]) -> list[n.Event]:
    async def source() -> AsyncIterator[SSEEvent]:
        for chunk in chunks:
            yield SSEEvent(raw=b"", event=None, data=orjson.dumps(chunk).decode())
            await asyncio.sleep(0)

    return [e async for e in decode_gemini_stream(source())]


async def test_streamed_partial_arguments_assemble_per_call() -> None:
    events = await _decode(GEMINI["google-stream-no-args-tool-call.chunks.txt"].events())
    starts = [e.name for e in events if isinstance(e, n.ToolCallStart)]
    args = [e.arguments for e in events if isinstance(e, n.ToolCallDelta)]
    assert starts == ["read_theme", "read_screen", "read_screen", "read_screen"]
    assert args == ["{}", '{"id":"A"}', '{"id":"B"}', '{"id":"C"}']
    done = [e for e in events if isinstance(e, n.ReasoningDone)]
    assert len(done) == 1 and done[0].signature  # the thought closes with the call's signature


async def test_stream_without_finish_reason_is_interrupted() -> None:
    with pytest.raises(GatewayError) as info:
        await _decode(GEMINI["google-text.chunks.txt"].events()[:-1])
    assert info.value.code == "upstream_interrupted"


def test_stream_error_chunk_keeps_its_status() -> None:
    body = orjson.loads(GEMINI["google-429-retry-info.json"].wire())
    with pytest.raises(GatewayError) as info:
        GeminiStreamDecoder().feed(body)
    assert info.value.status == 429


# Rendering for Gemini clients --------------------------------------------------------------


def test_render_usage_parts_and_refusal() -> None:
    resp = n.Response(
        id="r",
        model="claude",
        items=[
            n.Reasoning(text="think", signature="sig"),
            n.Reasoning(signature="bare"),
            n.ToolCall(call_id="t1", name="f", arguments='{"a":1}'),
            n.Message(role="assistant", refusal="cannot"),
        ],
        stop_reason="refusal",
        usage=Usage(input_tokens=10, output_tokens=30, reasoning_tokens=20, cached_tokens=4),
    )
    body = render_gemini(resp)
    candidate = body["candidates"][0]
    assert candidate["content"]["parts"] == [
        {"text": "think", "thought": True, "thoughtSignature": "sig"},
        {"functionCall": {"id": "t1", "name": "f", "args": {"a": 1}}, "thoughtSignature": "bare"},
    ]
    assert (candidate["finishReason"], candidate["finishMessage"]) == ("SAFETY", "cannot")
    assert body["usageMetadata"] == {
        "promptTokenCount": 10,
        "candidatesTokenCount": 10,
        "totalTokenCount": 40,
        "thoughtsTokenCount": 20,
        "cachedContentTokenCount": 4,
    }


EVENTS: list[n.Event] = [
    n.Start(id="r", model="m"),
    n.ReasoningDelta("hm"),
    n.ReasoningDone(signature="s"),
    n.ToolCallStart(index=0, call_id="c", name="f"),
    n.ToolCallDelta(index=0, arguments='{"a":'),
    n.ToolCallDelta(index=0, arguments="1}"),
    n.TextDelta("done"),
    n.Finish(stop_reason="tool_calls", usage=Usage(input_tokens=3, output_tokens=4)),
]


@pytest.mark.parametrize("sse", [True, False], ids=["sse", "array"])
def test_stream_renderer_sends_whole_calls(sse: bool) -> None:
    renderer = GeminiStreamRenderer(sse)
    raw = b"".join(renderer.feed(e) for e in EVENTS) + renderer.close()
    answer = read_gemini_stream(raw) if sse else read_gemini_array(raw)
    assert answer.calls == [("f", {"a": 1})]
    assert (answer.text, answer.reasoning, answer.finish) == ("done", "hm", "STOP")
    assert answer.signatures == ["s"] and answer.usage.input == 3


@pytest.mark.parametrize("sse", [True, False], ids=["sse", "array"])
def test_stream_error_keeps_the_framing(sse: bool) -> None:
    renderer = GeminiStreamRenderer(sse)
    raw = renderer.feed(n.TextDelta("partial")) + renderer.error(GatewayError(502, "cut"))
    answer = read_gemini_stream(raw) if sse else read_gemini_array(raw)
    assert answer.text == "partial"
    assert answer.error == {"code": 502, "message": "cut", "status": "UNAVAILABLE"}


def test_schema_conversion() -> None:
    schema = {
        "type": "OBJECT",
        "propertyOrdering": ["a"],
        "properties": {"a": {"type": "ARRAY", "items": {"type": "NUMBER"}, "minItems": "1"}},
        "anyOf": [{"type": "STRING"}],
    }
    assert to_json_schema(schema) == {
        "type": "object",
        "properties": {"a": {"type": "array", "items": {"type": "number"}, "minItems": 1}},
        "anyOf": [{"type": "string"}],
    }


def test_settings_only_some_providers_take() -> None:
    from edge.translate.anthropic_outbound import messages_body
    from edge.translate.chat_outbound import chat_body
    from policies.catalog import Model, Provider

    req = _parse(
        {
            "contents": [_user()],
            "generationConfig": {"seed": 7, "presencePenalty": 0.5, "topK": 4},
            "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"}],
        }
    )
    claude = Model(id="c", provider="anthropic", upstream="c")
    with pytest.raises(GatewayError) as info:
        messages_body(req, claude, stream=False)
    assert info.value.param == "seed" and "Anthropic" in info.value.message
    vllm = Provider("v", "openai-compatible", ("chat",), "http://x", None)
    with pytest.raises(GatewayError) as info:
        chat_body(req, vllm, stream=False)
    assert info.value.param == "safety_settings"
    req.extra.pop("safety_settings")
    body = chat_body(req, vllm, stream=False)
    assert (body["seed"], body["presence_penalty"], body["top_k"]) == (7, 0.5, 4)
    req.tools = [n.ToolSpec(name="f")]
    req.parallel_tool_calls = False
    body = gemini_body(req)  # no Gemini field for it: the adapter keeps the first call only
    assert "parallel" not in orjson.dumps(body).decode().lower()


def _two_calls() -> dict[str, Any]:
    calls = [{"functionCall": {"name": n_, "args": {"x": i}}} for i, n_ in enumerate("fg")]
    return {"candidates": [{"content": {"role": "model", "parts": calls}, "finishReason": "STOP"}]}


def test_one_call_at_a_time_keeps_the_first_call_of_a_whole_answer() -> None:
    answer = first_call_only(gemini_response(_two_calls()))
    calls = [i for i in answer.items if isinstance(i, n.ToolCall)]
    assert [c.name for c in calls] == ["f"] and answer.stop_reason == "tool_calls"


async def test_one_call_at_a_time_keeps_the_first_call_of_a_stream() -> None:
    chunk = _two_calls()

    async def source() -> AsyncIterator[SSEEvent]:
        yield SSEEvent(b"", data=orjson.dumps(chunk).decode())

    events = [e async for e in first_call_events(decode_gemini_stream(source()))]
    starts = [e for e in events if isinstance(e, n.ToolCallStart)]
    assert [s.name for s in starts] == ["f"]
    assert all(e.index == 0 for e in events if isinstance(e, n.ToolCallDelta))
    assert isinstance(events[-1], n.Finish) and events[-1].stop_reason == "tool_calls"

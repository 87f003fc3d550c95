"""The Responses API as a provider wire API: other client APIs reach a Responses-only model."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from edge.errors import GatewayError
from edge.translate import neutral as n
from edge.translate.responses_upstream import parse_response, request_body
from policies.catalog import build_catalog, default_catalog_data
from tests.support.fake_upstream import Scenario
from tests.support.gateway import gateway_env, settings_for, start_live, stop_live
from tests.test_responses_passthrough import BY_NAME, WHOLE, frames_of


def test_request_body_from_a_neutral_request() -> None:
    req = n.Request(
        model="gpt-x",
        items=[
            n.Message(role="system", parts=[n.TextPart("be brief")]),
            n.Message(role="user", parts=[n.TextPart("hi"), n.ImagePart(url="https://x/i.png")]),
            n.ToolCall(call_id="c1", name="f", arguments='{"a":1}'),
            n.ToolResult(call_id="c1", output="done"),
            n.Reasoning(text="plain thoughts"),  # no encrypted form: cannot be replayed
        ],
        tools=[n.ToolSpec(name="f", parameters={"type": "object"})],
        tool_choice="f",
        response_format=n.ResponseFormat(type="json_schema", name="o", schema={"type": "object"}),
        reasoning=n.ReasoningConfig(effort="high"),
        max_output_tokens=100,
    )
    body = request_body(req, stream=True)
    assert [i["type"] for i in body["input"]] == [
        "message",
        "message",
        "function_call",
        "function_call_output",
    ]
    assert body["input"][1]["content"][1] == {
        "type": "input_image",
        "image_url": "https://x/i.png",
        "detail": "auto",
    }
    assert body["tool_choice"] == {"type": "function", "name": "f"}
    assert body["text"]["format"]["schema"] == {"type": "object"}
    assert body["reasoning"] == {"effort": "high"}
    assert body["include"] == ["reasoning.encrypted_content"]
    assert (body["store"], body["stream"], body["max_output_tokens"]) == (False, True, 100)
    with pytest.raises(GatewayError, match="stop"):
        request_body(n.Request(model="m", items=[], stop=["x"]), stream=False)


@pytest.mark.parametrize("rec", [r for r in WHOLE if "error" not in r.name], ids=lambda r: r.name)
def test_every_recorded_answer_parses(rec) -> None:
    body = rec.body()
    resp = parse_response(body)
    assert resp.id == body["id"]
    assert resp.usage.input_tokens == body["usage"]["input_tokens"]
    calls = [i for i in resp.items if isinstance(i, n.ToolCall)]
    assert resp.stop_reason == ("tool_calls" if calls else "stop")
    texts = "".join(i.text for i in resp.items if isinstance(i, n.Message))
    expected = "".join(
        p["text"]
        for o in body["output"]
        if o["type"] == "message"
        for p in o["content"]
        if p["type"] == "output_text"
    )
    assert texts == expected


@pytest.fixture
async def responses_only(store_url, fake):
    extra: dict[str, Any] = {
        "providers": {
            "respo": {
                "kind": "openai",
                "apis": ["responses"],
                "base_url": f"{fake.url}/v1",
                "api_key": "sk-test-0123456789",
            }
        },
        "models": [{"id": "resp-only", "provider": "respo", "upstream": "gpt-x"}],
    }
    env = gateway_env(store_url, fake.url)
    catalog = build_catalog(default_catalog_data(), env, extra)
    live = await start_live(settings_for(env).with_overrides(catalog=catalog))
    tenant = await live.tenant()
    client = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{live.url}/v1", max_retries=0)
    yield client
    await client.close()
    await stop_live(live)


async def test_chat_client_whole_answer(responses_only, fake) -> None:
    fake.push(Scenario(recording=BY_NAME["lmstudio-basic.1.json"]))
    reply = await responses_only.chat.completions.create(
        model="resp-only", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "text content"
    assert reply.usage is not None and reply.usage.prompt_tokens == 136
    sent = fake.requests[-1]
    assert sent.path == "/v1/responses" and sent.body["model"] == "gpt-x"
    assert sent.body["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    ]


@pytest.mark.parametrize(
    "name", ["lmstudio-tool-call.1.chunks.txt", "parallel-tool-call-wrapper.1.chunks.txt"]
)
async def test_chat_client_streamed_tool_calls(responses_only, fake, name: str) -> None:
    fake.push(Scenario(frames=frames_of(BY_NAME[name])))
    stream = await responses_only.chat.completions.create(
        model="resp-only", messages=[{"role": "user", "content": "weather?"}], stream=True
    )
    names, args, finish = "", "", None
    async for chunk in stream:
        if not chunk.choices:
            continue
        for call in chunk.choices[0].delta.tool_calls or []:
            names += call.function.name or ""
            args += call.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert json.loads(args)
    assert names in ("weather", "parallel")


async def test_chat_client_sees_an_upstream_failure(responses_only, fake) -> None:
    fake.push(Scenario(frames=frames_of(BY_NAME["openai-error.1.chunks.txt"])))
    stream = await responses_only.chat.completions.create(
        model="resp-only", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError, match="exceeded your current quota"):
        async for _ in stream:
            pass

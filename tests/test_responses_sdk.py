"""The official OpenAI SDK's Responses calls through the gateway on a translated model, with every
object and event the gateway produces validated against the Open Responses spec."""

from __future__ import annotations

import json
from typing import Any

import openai
import orjson
import pytest

from edge.appkeys import STORE
from tests.support.fake_upstream import Scenario
from tests.test_responses_passthrough import parse_sse
from tests.test_responses_schema import validate_item, validate_object, validate_stream

WEATHER = {
    "type": "function",
    "name": "weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


@pytest.fixture
async def tenant(gateway):
    return await gateway.tenant()


@pytest.fixture
async def client(gateway, tenant):
    sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{gateway.url}/v1", max_retries=0)
    yield sdk
    await sdk.close()


async def create(client: openai.AsyncOpenAI, **body: Any) -> dict[str, Any]:
    """responses.create, returning the raw JSON after validating it."""
    raw = await client.responses.with_raw_response.create(**body)
    obj: dict[str, Any] = orjson.loads(raw.http_response.content)
    validate_object(obj)
    return obj


async def raw_stream(gateway, tenant, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with gateway.http.post(
        f"{gateway.url}/v1/responses",
        json={**body, "stream": True},
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        raw = await resp.read()
    named = parse_sse(raw)
    events = [json.loads(data) for _, data in named]
    assert [name for name, _ in named] == [e["type"] for e in events]
    validate_stream(events)
    return events


async def test_string_input(client) -> None:
    obj = await create(client, model="local/echo", input="hello edge")
    assert obj["status"] == "completed" and obj["store"] is True and obj["background"] is False
    parsed = await client.responses.create(model="local/echo", input="hello edge")
    assert parsed.output_text == "Echo: hello edge"
    assert parsed.usage is not None and (parsed.usage.input_tokens, parsed.usage.output_tokens) == (
        2,
        3,
    )


async def test_item_input_with_instructions_and_echoed_fields(client, gateway, tenant) -> None:
    obj = await create(
        client,
        model="local/echo",
        instructions="Be brief.",
        input=[
            {"role": "developer", "content": "context"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        ],
        metadata={"team": "search"},
        temperature=0.2,
        max_output_tokens=50,
        prompt_cache_key="k1",
        reasoning={"effort": "low"},
        truncation="auto",
        extra_body={"tags": ["a"], "trace": {"id": "t1"}, "providerOptions": {"gateway": {}}},
    )
    assert obj["output"][0]["content"][0]["text"] == "Echo: hi"
    assert obj["instructions"] == "Be brief." and obj["metadata"] == {"team": "search"}
    assert (obj["temperature"], obj["max_output_tokens"], obj["truncation"]) == (0.2, 50, "auto")
    assert obj["reasoning"] == {"effort": "low", "summary": None}
    assert "tags" not in obj and "providerOptions" not in obj
    # Recorded with the stored response, never sent anywhere.
    record = await gateway.app[STORE].responses.get(tenant.account, obj["id"])
    assert record.recorded == {"tags": ["a"], "trace": {"id": "t1"}}


async def test_tools_then_function_call_output(client) -> None:
    first = await create(client, model="local/echo", input="weather in Rome?", tools=[WEATHER])
    call = first["output"][0]
    assert call["type"] == "function_call" and call["name"] == "weather"
    assert json.loads(call["arguments"]) == {"city": "weather in Rome?"}
    assert first["tools"] == [WEATHER]
    # Stateless follow-up: the whole conversation sent again.
    follow = await create(
        client,
        model="local/echo",
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "weather in Rome?"},
            {k: call[k] for k in ("type", "id", "call_id", "name", "arguments")},
            {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"},
        ],
    )
    assert follow["output"][0]["content"][0]["text"] == "Tool result: sunny"
    # Chained follow-up: only the tool output, the rest from the stored transcript.
    chained = await client.responses.create(
        model="local/echo",
        tools=[WEATHER],
        previous_response_id=first["id"],
        input=[{"type": "function_call_output", "call_id": call["call_id"], "output": "rain"}],
    )
    assert chained.output_text == "Tool result: rain"


async def test_json_schema_output(client) -> None:
    schema = {
        "type": "object",
        "properties": {"colors": {"type": "array", "items": {"type": "string"}}},
        "required": ["colors"],
        "additionalProperties": False,
    }
    text = {"format": {"type": "json_schema", "name": "colors", "schema": schema, "strict": True}}
    obj = await create(client, model="local/echo", input="three colors", text=text)
    assert obj["text"]["format"]["schema"] == schema
    parsed = await client.responses.create(model="local/echo", input="three colors", text=text)
    assert json.loads(parsed.output_text) == {"colors": ["three colors"]}


async def test_stream_true_with_the_sdk(client, gateway, tenant) -> None:
    stream = await client.responses.create(model="local/echo", input="one two", stream=True)
    kinds, text = [], ""
    async for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
    assert text == "Echo: one two"
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    events = await raw_stream(gateway, tenant, {"model": "local/echo", "input": "one two"})
    assert events[0]["response"]["status"] == "in_progress"
    # Tool calls stream their arguments.
    events = await raw_stream(
        gateway, tenant, {"model": "local/echo", "input": "Paris", "tools": [WEATHER]}
    )
    kinds = [e["type"] for e in events]
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds


async def test_stream_helper_and_retrieve(client) -> None:
    async with client.responses.stream(model="local/echo", input="streamed words") as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert final.output_text == "Echo: streamed words"
    again = await client.responses.with_raw_response.retrieve(final.id)
    stored = orjson.loads(again.http_response.content)
    validate_object(stored)
    assert stored["id"] == final.id and stored["output"][0]["content"][0]["text"] == (
        "Echo: streamed words"
    )


async def test_retrieve_delete(client) -> None:
    obj = await create(client, model="local/echo", input="keep me")
    got = await client.responses.with_raw_response.retrieve(obj["id"])
    assert orjson.loads(got.http_response.content) == obj
    await client.responses.delete(obj["id"])
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(obj["id"])
    with pytest.raises(openai.NotFoundError):
        await client.responses.delete(obj["id"])


async def test_input_items_pages(client) -> None:
    items = [{"role": "user", "content": f"m{i}"} for i in range(5)]
    obj = await create(client, model="local/echo", input=items)
    page = await client.responses.input_items.list(obj["id"])
    texts = [i.content[0].text for i in page.data]
    assert texts == ["m4", "m3", "m2", "m1", "m0"]  # newest first by default
    raw = await client.responses.input_items.with_raw_response.list(obj["id"])
    listing = orjson.loads(raw.http_response.content)
    assert listing["object"] == "list" and listing["first_id"] == page.data[0].id
    for item in listing["data"]:
        validate_item(item)
    first = await client.responses.input_items.list(obj["id"], limit=2, order="asc")
    assert [i.content[0].text for i in first.data] == ["m0", "m1"] and first.has_more
    rest = await client.responses.input_items.list(
        obj["id"], limit=10, order="asc", after=first.data[-1].id
    )
    assert [i.content[0].text for i in rest.data] == ["m2", "m3", "m4"] and not rest.has_more


async def test_cancel_rules(client) -> None:
    plain = await create(client, model="local/echo", input="not background")
    with pytest.raises(openai.BadRequestError):
        await client.responses.cancel(plain["id"])
    with pytest.raises(openai.NotFoundError):
        await client.responses.cancel("resp_unknown")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"metadata": {"k" * 65: "v"}}, "metadata"),
        ({"metadata": {"k": "v" * 513}}, "metadata.k"),
        ({"prompt_cache_key": "x" * 65}, "prompt_cache_key"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"background": True, "store": False}, "background"),
        ({"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
    ],
)
async def test_invalid_requests_are_400(gateway, tenant, body: dict[str, Any], param) -> None:
    async with gateway.http.post(
        f"{gateway.url}/v1/responses",
        json={"model": "local/echo", "input": "x", **body},
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


async def test_gateway_prefix_and_hosted_tools_reach_responses_providers(gateway, tenant, fake):
    sdk = openai.AsyncOpenAI(
        api_key=tenant.key, base_url=f"{gateway.url}/ai-gateway/openai/v1", max_retries=0
    )
    fake.push(Scenario(body=b'{"id":"resp_x","object":"response","status":"completed"}'))
    resp = await sdk.responses.create(
        model="gpt-5-4",
        input="news",
        tools=[{"type": "web_search"}],
        extra_body={"tags": ["t"], "trace": {"id": "1"}},
    )
    await sdk.close()
    assert resp.id == "resp_x"
    sent = fake.requests[-1].body
    assert sent["tools"] == [{"type": "web_search"}]
    assert "tags" not in sent and "trace" not in sent

"""`previous_response_id` chains, whatever the provider; account isolation; retention."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import orjson
import pytest

from tests.support.clock import Deadline
from tests.support.fake_upstream import Scenario
from tests.support.gateway import gateway_env, settings_for, start_live, stop_live


def answer(response_id: str, text: str) -> bytes:
    """A provider's whole Responses answer."""
    return orjson.dumps(
        {
            "id": response_id,
            "object": "response",
            "created_at": 1700000000,
            "status": "completed",
            "model": "gpt-5.4",
            "output": [
                {
                    "type": "message",
                    "id": f"msg_{response_id}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7},
        }
    )


def texts(items: list[dict[str, Any]]) -> list[str]:
    """The text of each message item, in order."""
    out = []
    for item in items:
        content = item.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.append("".join(p.get("text", "") for p in content))
    return out


def sdk(url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=key, base_url=f"{url}/v1", max_retries=0)


@pytest.fixture
async def tenant(gateway):
    return await gateway.tenant()


@pytest.fixture
async def client(gateway, tenant):
    client = sdk(gateway.url, tenant.key)
    yield client
    await client.close()


async def test_three_turns_carry_the_whole_transcript(client, fake) -> None:
    fake.push(
        Scenario(body=answer("resp_t1", "one")),
        Scenario(body=answer("resp_t2", "two")),
        Scenario(body=answer("resp_t3", "three")),
    )
    first = await client.responses.create(model="gpt-5-4", input="u1")
    second = await client.responses.create(
        model="gpt-5-4", input="u2", previous_response_id=first.id
    )
    third = await client.responses.create(
        model="gpt-5-4",
        input=[{"role": "user", "content": "u3"}],
        previous_response_id=second.id,
    )
    assert third.output_text == "three"
    sent = fake.requests[-1].body
    assert texts(sent["input"]) == ["u1", "one", "u2", "two", "u3"]
    assert "previous_response_id" not in sent
    stored = await client.responses.retrieve(third.id)
    assert stored.previous_response_id == second.id


async def test_a_chain_can_change_provider(client, fake) -> None:
    fake.push(Scenario(body=answer("resp_next", "from openai")))
    echo = await client.responses.create(model="local/echo", input="hello", instructions="x")
    follow = await client.responses.create(
        model="gpt-5-4", input="and now?", previous_response_id=echo.id
    )
    assert follow.output_text == "from openai"
    sent = fake.requests[-1].body["input"]
    assert texts(sent) == ["hello", "Echo: hello", "and now?"]
    # Input messages go without our ids; the assistant turn keeps its output form.
    assert "id" not in sent[0] and sent[1]["role"] == "assistant"
    back = await client.responses.create(
        model="local/echo", input="last", previous_response_id=follow.id
    )
    assert back.output_text == "Echo: last"


async def test_store_false_cannot_be_chained(client, gateway, tenant) -> None:
    plain = await client.responses.create(model="local/echo", input="x", store=False)
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="local/echo", input="y", previous_response_id=plain.id)
    assert info.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(plain.id)


async def test_unknown_previous_response_is_404(client) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await client.responses.create(
            model="local/echo", input="y", previous_response_id="resp_nope"
        )
    assert info.value.body["code"] == "previous_response_not_found"
    assert info.value.body["param"] == "previous_response_id"


async def test_another_account_sees_nothing(client, gateway, fake) -> None:
    fake.push(Scenario(frames=[b"event: x\ndata: {}\n\n"] * 200, delay_chunks=0.05))
    mine = await client.responses.create(model="local/echo", input="secret")
    running = await client.responses.create(model="gpt-5-4", input="long", background=True)
    other = await gateway.tenant()
    them = sdk(gateway.url, other.key)
    try:
        for response_id in (mine.id, running.id):
            with pytest.raises(openai.NotFoundError):
                await them.responses.retrieve(response_id)
            with pytest.raises(openai.NotFoundError):
                await them.responses.retrieve(response_id, stream=True)
            with pytest.raises(openai.NotFoundError):
                await them.responses.input_items.list(response_id)
            with pytest.raises(openai.NotFoundError):
                await them.responses.cancel(response_id)
            with pytest.raises(openai.NotFoundError):
                await them.responses.delete(response_id)
            with pytest.raises(openai.NotFoundError) as info:
                await them.responses.create(
                    model="local/echo", input="x", previous_response_id=response_id
                )
            assert info.value.body["code"] == "previous_response_not_found"
    finally:
        await them.close()
    # Nothing the other account did touched them.
    assert (await client.responses.retrieve(mine.id)).output_text == "Echo: secret"
    assert (await client.responses.cancel(running.id)).status == "cancelled"


async def test_retention_is_configurable(store_url, fake) -> None:
    settings = settings_for(gateway_env(store_url, fake.url)).with_overrides(
        responses_retention=0.5
    )
    live = await start_live(settings)
    try:
        tenant = await live.tenant()
        client = sdk(live.url, tenant.key)
        resp = await client.responses.create(model="local/echo", input="short-lived")
        assert (await client.responses.retrieve(resp.id)).id == resp.id
        deadline = Deadline(10)
        while True:
            try:
                await client.responses.retrieve(resp.id)
            except openai.NotFoundError:
                break
            deadline.check("kept past its retention")
            await asyncio.sleep(0.05)
        await client.close()
    finally:
        await stop_live(live)


def test_default_retention_is_thirty_days() -> None:
    settings = settings_for(gateway_env("memory://", None))
    assert settings.responses_retention == 30 * 86400
    env = gateway_env("memory://", None, EDGE_RESPONSES_RETENTION_DAYS="2")
    assert settings_for(env).responses_retention == 2 * 86400

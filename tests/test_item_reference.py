"""Issue 17, item 2: `item_reference` input items on `/v1/responses`, for every model
(memory:// and redis://).

The AI SDK's `openai(model)` provider sends `{"type": "item_reference", "id": ...}` for each
earlier assistant turn from the second turn of a chat. edge stored those items itself: it
resolves each reference from the caller's stored responses (its account, its branch lineage)
before translating, so the chat works on local/echo, Claude, Gemini and OpenAI alike, and the
provider receives the items, never the references. An id the caller has not stored (unknown,
deleted, another account's, outside its lineage) is a 400 naming it."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest

from tests.support.fake_upstream import Scenario
from tests.support.gateway import Live
from tests.test_lineage_responses import _call, _keys
from tests.test_responses_chain import answer


def anthropic_answer(text: str) -> bytes:
    """A whole Messages answer."""
    return orjson.dumps(
        {
            "id": "msg_01abc",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 2},
        }
    )


def gemini_answer(text: str) -> bytes:
    """A whole generateContent answer."""
    return orjson.dumps(
        {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2},
        }
    )


ANSWERS = {"claude-sonnet-4-6": anthropic_answer, "gemini-2-5-flash": gemini_answer}


@pytest.fixture
async def tenant(gateway: Live):
    return await gateway.tenant()


@pytest.fixture
async def client(gateway: Live, tenant):
    sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{gateway.url}/v1", max_retries=0)
    yield sdk
    await sdk.close()


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def ref(item_id: str) -> dict[str, Any]:
    return {"type": "item_reference", "id": item_id}


def message_id(response: Any) -> str:
    """The id of a response's assistant message, as the AI SDK keeps it (`itemId`)."""
    (found,) = [item.id for item in response.output if item.type == "message"]
    return str(found)


async def three_turns(client: openai.AsyncOpenAI, model: str) -> list[Any]:
    """A chat as the AI SDK sends it: every user turn whole, every assistant turn by reference,
    no previous_response_id."""
    first = await client.responses.create(model=model, input=[user("u1")])
    second = await client.responses.create(
        model=model, input=[user("u1"), ref(message_id(first)), user("u2")]
    )
    third = await client.responses.create(
        model=model,
        input=[user("u1"), ref(message_id(first)), user("u2"), ref(message_id(second)), user("u3")],
    )
    return [first, second, third]


def _texts(items: list[Any]) -> list[tuple[str, str]]:
    """(role, text) of each message item."""
    out = []
    for item in items:
        data = item if isinstance(item, dict) else item.model_dump()
        if data.get("type", "message") == "message":
            content = data["content"]
            text = content if isinstance(content, str) else "".join(p["text"] for p in content)
            out.append((data["role"], text))
    return out


async def test_a_three_turn_chat_by_reference_on_local_echo(client) -> None:
    first, second, third = await three_turns(client, "local/echo")
    assert third.output_text == "Echo: u3"
    listed = await client.responses.input_items.list(third.id, order="asc")
    assert _texts(listed.data) == [
        ("user", "u1"),
        ("assistant", "Echo: u1"),
        ("user", "u2"),
        ("assistant", "Echo: u2"),
        ("user", "u3"),
    ]
    # The references were replaced by the stored items themselves, ids included.
    ids = [item.id for item in listed.data]
    assert ids[1] == message_id(first) and ids[3] == message_id(second)


@pytest.mark.parametrize("model", sorted(ANSWERS))
async def test_a_three_turn_chat_by_reference_on_claude_and_gemini(client, fake, model) -> None:
    make = ANSWERS[model]
    fake.push(*(Scenario(body=make(f"a{n}")) for n in (1, 2, 3)))
    *_, third = await three_turns(client, model)
    assert third.output_text == "a3"
    sent = fake.requests[-1].body
    if model.startswith("claude"):
        turns = [(m["role"], m["content"]) for m in sent["messages"]]
        flat = [
            (role, content if isinstance(content, str) else "".join(p["text"] for p in content))
            for role, content in turns
        ]
        assert flat == [
            ("user", "u1"),
            ("assistant", "a1"),
            ("user", "u2"),
            ("assistant", "a2"),
            ("user", "u3"),
        ]
    else:
        flat = [(c["role"], "".join(p["text"] for p in c["parts"])) for c in sent["contents"]]
        assert flat == [
            ("user", "u1"),
            ("model", "a1"),
            ("user", "u2"),
            ("model", "a2"),
            ("user", "u3"),
        ]
    assert b"item_reference" not in fake.requests[-1].raw


async def test_openai_models_get_the_items_never_the_references(client, fake) -> None:
    fake.push(*(Scenario(body=answer(f"resp_up{n}", f"o{n}")) for n in (1, 2, 3)))
    first, second, third = await three_turns(client, "gpt-5-4")
    assert third.output_text == "o3"
    sent = fake.requests[-1].body["input"]
    assert b"item_reference" not in fake.requests[-1].raw
    assert _texts(sent) == [
        ("user", "u1"),
        ("assistant", "o1"),
        ("user", "u2"),
        ("assistant", "o2"),
        ("user", "u3"),
    ]
    # Assistant items go as the provider made them (its own ids); nothing else is added.
    assert sent[1]["id"] == message_id(first) == "msg_resp_up1"
    assert sent[3]["id"] == message_id(second)


async def test_a_reference_works_in_a_background_run(client) -> None:
    first = await client.responses.create(model="local/echo", input=[user("u1")])
    queued = await client.responses.create(
        model="local/echo", input=[ref(message_id(first)), user("u2")], background=True
    )
    listed = await client.responses.input_items.list(queued.id, order="asc")
    assert _texts(listed.data) == [("assistant", "Echo: u1"), ("user", "u2")]


async def _refused(client: openai.AsyncOpenAI, model: str, item_id: str) -> dict[str, Any]:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model=model, input=[user("x"), ref(item_id)])
    body = caught.value.body
    assert isinstance(body, dict)
    return body


async def test_an_unknown_id_is_400_naming_it_before_any_call(client, fake) -> None:
    calls = len(fake.requests)
    body = await _refused(client, "gpt-5-4", "msg_never_stored")
    assert body["code"] == "item_not_found" and body["param"] == "input[1].id"
    assert "'msg_never_stored'" in body["message"]
    assert len(fake.requests) == calls
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="local/echo", input=[{"type": "item_reference"}])
    assert caught.value.body["param"] == "input[0].id"


async def test_another_accounts_item_is_unknown(gateway: Live, client) -> None:
    theirs = await gateway.tenant()
    them = openai.AsyncOpenAI(api_key=theirs.key, base_url=f"{gateway.url}/v1", max_retries=0)
    try:
        made = await them.responses.create(model="local/echo", input="secret")
        own = message_id(made)
        assert (await them.responses.create(model="local/echo", input=[ref(own)])).id
    finally:
        await them.close()
    foreign = await _refused(client, "local/echo", own)
    unknown = await _refused(client, "local/echo", "msg_zz_never_made_0123")
    assert foreign == orjson.loads(
        orjson.dumps(unknown).replace(b"msg_zz_never_made_0123", own.encode())
    )


async def test_deleted_and_unstored_items_are_unknown(client) -> None:
    kept = await client.responses.create(model="local/echo", input="one")
    copy = await client.responses.create(model="local/echo", input=[ref(message_id(kept))])
    # A copy held by a later response leaves the reference with the response that made it.
    await client.responses.delete(copy.id)
    assert await client.responses.create(model="local/echo", input=[ref(message_id(kept))])
    await client.responses.delete(kept.id)
    body = await _refused(client, "local/echo", message_id(kept))
    assert body["code"] == "item_not_found"
    plain = await client.responses.create(model="local/echo", input="two", store=False)
    assert (await _refused(client, "local/echo", message_id(plain)))["code"] == "item_not_found"


async def test_a_reference_outside_the_lineage_is_unknown(gateway: Live) -> None:
    keys = await _keys(gateway)
    child, other = keys.by_branch["br-child"], keys.by_branch["br-other"]
    status, made = await _call(
        gateway, "POST", "/responses", other, {"model": "local/echo", "input": "sibling's"}
    )
    assert status == 200, made
    sibling_item = made["output"][0]["id"]
    status, mine = await _call(
        gateway, "POST", "/responses", child, {"model": "local/echo", "input": "own"}
    )
    assert status == 200, mine
    own_item = mine["output"][0]["id"]

    async def with_ref(key: str, item_id: str) -> tuple[int, Any]:
        body = {"model": "local/echo", "input": [user("x"), ref(item_id)]}
        return await _call(gateway, "POST", "/responses", key, body)

    status, outside = await with_ref(child, sibling_item)
    status_unknown, unknown = await with_ref(child, "msg_zz_never_made_0123")
    assert status == status_unknown == 400, outside
    assert outside == orjson.loads(
        orjson.dumps(unknown).replace(b"msg_zz_never_made_0123", sibling_item.encode())
    )
    assert (await with_ref(child, own_item))[0] == 200
    # Keys above both branches reach both.
    for key in (keys.by_branch["br-root"], keys.unbound):
        assert (await with_ref(key, sibling_item))[0] == 200
        assert (await with_ref(key, own_item))[0] == 200


async def test_referenced_items_count_in_the_input_estimate(gateway: Live, tenant) -> None:
    made = await gateway.tenant(account=tenant.account, branch=tenant.branch)
    status, first = await _call(
        gateway, "POST", "/responses", made.key, {"model": "local/echo", "input": "ab " * 1500}
    )
    assert status == 200, first
    # A key whose whole minute holds fewer tokens than the referenced item's bytes (one byte a
    # token): a request of a few bytes that references it cannot fit.
    limited = await gateway.tenant(
        account=tenant.account,
        branch=tenant.branch,
        quota={"tokens_per_minute": 3000, "bytes_per_token": 1},
    )
    body = {
        "model": "local/echo",
        "input": [ref(first["output"][0]["id"]), user("and?")],
        "max_output_tokens": 16,
    }
    status, refused = await _call(gateway, "POST", "/responses", limited.key, body)
    assert status == 429, refused
    assert "more than the limit of 3000 tokens per minute" in refused["error"]["message"]

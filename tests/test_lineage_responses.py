"""Stored responses follow the branch lineage (memory and redis): a key bound to br-child reads,
lists the input items of, chains from, cancels and deletes the responses created on br-child or
below it, and gets the 404 of an unknown id for those created on its parent or a sibling. An
unbound key reaches every response of its account; a response that recorded no branch (made
without one, or stored before responses recorded their branch) is reached by unbound keys only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from edge.appkeys import STORE
from edge.store.responses import StoredResponse
from edge.store.responses_redis import RedisResponses, response_keys
from tests.support.clock import Deadline
from tests.support.gateway import Live

INVOKE = ["ai_gateway:invoke"]
TERMINAL = ("completed", "failed", "cancelled", "incomplete")


@dataclass
class Keys:
    """An account with br-root -> br-child -> br-grandchild and br-other beside br-child."""

    account: str
    by_branch: dict[str, str]  # a key bound to each branch
    unbound: str


async def _keys(gateway: Live) -> Keys:
    root = await gateway.tenant(branch="br-root")
    for branch, parent in [
        ("br-child", "br-root"),
        ("br-grandchild", "br-child"),
        ("br-other", "br-root"),
    ]:
        status, body = await gateway.admin(
            "POST", f"/accounts/{root.account}/branches", {"id": branch, "parent": parent}
        )
        assert status == 201, body
    by_branch = {"br-root": root.key}
    for branch in ("br-child", "br-grandchild", "br-other", None):
        status, body = await gateway.admin(
            "POST", "/keys", {"account": root.account, "branch": branch, "scopes": INVOKE}
        )
        assert status == 201, body
        by_branch[branch or ""] = body["key"]
    unbound = by_branch.pop("")
    return Keys(account=root.account, by_branch=by_branch, unbound=unbound)


async def _call(
    gateway: Live,
    method: str,
    path: str,
    key: str,
    json: Any = None,
    branch: str | None = None,
) -> tuple[int, Any]:
    assert gateway.http is not None
    headers = {"Authorization": f"Bearer {key}"}
    if branch is not None:
        headers["X-Branch-Id"] = branch
    async with gateway.http.request(
        method, f"{gateway.url}/v1{path}", json=json, headers=headers
    ) as resp:
        raw = await resp.read()
        if resp.content_type == "text/event-stream":
            return resp.status, raw.decode()
        return resp.status, orjson.loads(raw)


async def _create(
    gateway: Live, key: str, text: str, branch: str | None = None, **extra: Any
) -> dict[str, Any]:
    body = {"model": "local/echo", "input": text, **extra}
    status, made = await _call(gateway, "POST", "/responses", key, body, branch)
    assert status == 200, made
    return dict(made)


async def _finished(gateway: Live, key: str, response_id: str) -> None:
    deadline = Deadline(10)
    while (await _call(gateway, "GET", f"/responses/{response_id}", key))[1]["status"] not in (
        TERMINAL
    ):
        deadline.check("the background response did not finish")


async def _unknown(gateway: Live, key: str, response_id: str) -> tuple[int, Any]:
    """What an id that does not exist answers, with `response_id` in its place."""
    never = "resp_never_made_0123456789"
    status, answer = await _call(gateway, "GET", f"/responses/{never}", key)
    assert status == 404, answer
    return status, orjson.loads(orjson.dumps(answer).replace(never.encode(), response_id.encode()))


async def _reads(gateway: Live, key: str, response_id: str) -> list[tuple[int, Any]]:
    """GET, GET ?stream=true, input items and cancel, as the key sees them."""
    base = f"/responses/{response_id}"
    return [
        await _call(gateway, "GET", base, key),
        await _call(gateway, "GET", f"{base}?stream=true", key),
        await _call(gateway, "GET", f"{base}/input_items", key),
        await _call(gateway, "POST", f"{base}/cancel", key),
    ]


async def test_a_child_key_cannot_reach_responses_of_its_parent_or_sibling(
    gateway: Live,
) -> None:
    keys = await _keys(gateway)
    child = keys.by_branch["br-child"]
    made = {
        branch: await _create(gateway, keys.by_branch[branch], branch, background=True)
        for branch in ("br-root", "br-other")
    }
    for branch, response in made.items():
        await _finished(gateway, keys.by_branch[branch], response["id"])
    for branch, response in made.items():
        rid = response["id"]
        unknown = await _unknown(gateway, child, rid)
        for answer in await _reads(gateway, child, rid):
            assert answer == unknown, (branch, answer)
        assert await _call(gateway, "DELETE", f"/responses/{rid}", child) == unknown
        # Still there for its own branch's key.
        status, kept = await _call(gateway, "GET", f"/responses/{rid}", keys.by_branch[branch])
        assert status == 200 and kept["id"] == rid


async def test_a_child_key_cannot_chain_from_its_parent_or_sibling(gateway: Live) -> None:
    keys = await _keys(gateway)
    child = keys.by_branch["br-child"]
    for branch in ("br-root", "br-other"):
        parent = await _create(gateway, keys.by_branch[branch], f"secret of {branch}")
        body = {"model": "local/echo", "input": "next", "previous_response_id": parent["id"]}
        status, answer = await _call(gateway, "POST", "/responses", child, body)
        assert status == 404, (branch, answer)
        assert answer["error"]["code"] == "previous_response_not_found"
        assert f"secret of {branch}" not in orjson.dumps(answer).decode()
        # The same answer as an id that never existed.
        body["previous_response_id"] = "resp_never_made"
        status, never = await _call(gateway, "POST", "/responses", child, body)
        assert status == 404 and never["error"]["code"] == answer["error"]["code"]


async def test_every_turn_of_a_chain_must_be_in_the_lineage(gateway: Live) -> None:
    keys = await _keys(gateway)
    child = keys.by_branch["br-child"]
    first = await _create(gateway, keys.unbound, "root secret", branch="br-root")
    # The unbound key continues it on br-child: that turn is the child's to read...
    body = {"model": "local/echo", "input": "on child", "previous_response_id": first["id"]}
    second = await _create(gateway, keys.unbound, "on child", branch="br-child", **body)
    assert (await _call(gateway, "GET", f"/responses/{second['id']}", child))[0] == 200
    # ...but chaining from it would hand the child the root's turn: refused as unknown.
    body = {"model": "local/echo", "input": "more", "previous_response_id": second["id"]}
    status, answer = await _call(gateway, "POST", "/responses", child, body)
    assert status == 404 and answer["error"]["code"] == "previous_response_not_found", answer
    assert "root secret" not in orjson.dumps(answer).decode()


async def test_a_child_key_reaches_its_own_and_its_descendants_responses(gateway: Live) -> None:
    keys = await _keys(gateway)
    child = keys.by_branch["br-child"]
    own = await _create(gateway, child, "mine", background=True)
    below = await _create(gateway, keys.by_branch["br-grandchild"], "below", background=True)
    on_grandchild = await _create(gateway, child, "sent below", branch="br-grandchild")
    for response in (own, below):
        await _finished(gateway, child, response["id"])
    for response in (own, below):
        rid = response["id"]
        gets = await _reads(gateway, child, rid)
        assert [status for status, _ in gets] == [200, 200, 200, 200], gets
        body = {"model": "local/echo", "input": "again", "previous_response_id": rid}
        status, chained = await _call(gateway, "POST", "/responses", child, body)
        assert status == 200 and chained["previous_response_id"] == rid, chained
    rid = on_grandchild["id"]
    # The grandchild's key reaches what the child made on br-grandchild, not the child's own.
    grandchild = keys.by_branch["br-grandchild"]
    assert (await _call(gateway, "GET", f"/responses/{rid}", grandchild))[0] == 200
    status, _ = await _call(gateway, "GET", f"/responses/{own['id']}", grandchild)
    assert status == 404
    for response in (own, below, on_grandchild):
        path = f"/responses/{response['id']}"
        assert (await _call(gateway, "DELETE", path, child))[0] == 200
        assert await _call(gateway, "GET", path, child) == await _unknown(
            gateway, child, response["id"]
        )


async def test_unbound_and_ancestor_keys_reach_the_lineage_below_them(gateway: Live) -> None:
    keys = await _keys(gateway)
    made = [
        await _create(gateway, keys.by_branch[branch], branch)
        for branch in ("br-root", "br-child", "br-grandchild", "br-other")
    ]
    for response in made:
        path = f"/responses/{response['id']}"
        for key in (keys.unbound, keys.by_branch["br-root"]):
            assert (await _call(gateway, "GET", path, key))[0] == 200, (path, key)
    body = {"model": "local/echo", "input": "x", "previous_response_id": made[3]["id"]}
    status, chained = await _call(gateway, "POST", "/responses", keys.unbound, body)
    assert status == 200, chained
    assert (await _call(gateway, "POST", "/responses", keys.by_branch["br-root"], body))[0] == 200


@pytest.mark.parametrize("legacy", [False, True])
async def test_a_response_without_a_branch_is_account_wide(gateway: Live, legacy: bool) -> None:
    keys = await _keys(gateway)
    if legacy:
        rid = "resp_stored_before_branches"
        await _store_without_branch(gateway, keys.account, rid)
    else:
        rid = (await _create(gateway, keys.unbound, "made without a branch"))["id"]
    path = f"/responses/{rid}"
    assert (await _call(gateway, "GET", path, keys.unbound))[0] == 200
    body = {"model": "local/echo", "input": "x", "previous_response_id": rid}
    for key in keys.by_branch.values():
        assert await _call(gateway, "GET", path, key) == await _unknown(gateway, key, rid)
        status, answer = await _call(gateway, "POST", "/responses", key, body)
        assert status == 404 and answer["error"]["code"] == "previous_response_not_found"
    status, chained = await _call(gateway, "POST", "/responses", keys.unbound, body)
    assert status == 200, chained


async def _store_without_branch(gateway: Live, account: str, rid: str) -> None:
    """A record as it was stored before responses recorded their branch (no `branch` field)."""
    assert gateway.app is not None
    store = gateway.app[STORE]
    record = StoredResponse(
        id=rid,
        account=account,
        response={"id": rid, "object": "response", "status": "completed", "output": []},
        input_items=[
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "old"}],
            }
        ],
    )
    await store.responses.create(record, ttl=600)
    if isinstance(store.responses, RedisResponses) and store.redis is not None:
        key, _ = response_keys(account, rid)
        kept = orjson.loads(await store.redis.hget(key, "record"))
        del kept["branch"]
        await store.redis.hset(key, "record", orjson.dumps(kept))
    assert (await store.responses.get(account, rid)) is not None


async def test_chaining_from_outside_the_lineage_tells_nothing_of_the_response(
    gateway: Live,
) -> None:
    # Not even its state: a parent's unstored response answers the child as a missing id does,
    # not 400 previous_response_not_stored, and its size is never counted against the child.
    keys = await _keys(gateway)
    unstored = await _create(gateway, keys.by_branch["br-root"], "secret", store=False)
    big = await _create(gateway, keys.by_branch["br-root"], "word " * 40_000)
    for previous in (unstored["id"], big["id"]):
        status, answer = await _call(
            gateway,
            "POST",
            "/responses",
            keys.by_branch["br-child"],
            {"model": "local/echo", "input": "more", "previous_response_id": previous},
        )
        assert status == 404, answer
        assert answer["error"]["code"] == "previous_response_not_found"

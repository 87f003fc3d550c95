"""The response store counts what each account stores (memory:// and redis://): the bytes a
response holds are added as it is written and appended to, in the same atomic step, given back
when it is deleted or once it has expired, and checked against the account's `storage_bytes`
and the response's `max_stored_response_bytes`; the item index lives and dies with it."""

from __future__ import annotations

import asyncio
import time

import pytest

from edge.store import open_store
from edge.store.responses import (
    OVER_CAP,
    OVER_LIMIT,
    Change,
    Room,
    StoredResponse,
    item_bytes,
    record_size,
)
from tests.support.clock import Deadline

pytestmark = pytest.mark.redis_modes


@pytest.fixture
async def store(store_url):
    async with open_store(store_url, redis_timeout=1.0) as opened:
        yield opened


def _record(rid: str = "resp_1", account: str = "a1", text: str = "hello") -> StoredResponse:
    return StoredResponse(
        id=rid,
        account=account,
        response={
            "id": rid,
            "status": "completed",
            "output": [{"type": "message", "id": f"msg_out_{rid}"}],
        },
        input_items=[{"type": "message", "id": f"msg_in_{rid}", "content": text}],
    )


async def test_a_response_counts_its_bytes_until_deleted(store) -> None:
    responses = store.responses
    record = _record()
    events = [b'{"type":"response.created"}']
    size = await responses.create(record, 60, events)
    assert size == record_size(record, events) > len(b'{"type":"response.created"}')
    held = await responses.storage("a1")
    assert (held.used, held.responses) == (size, 1)
    assert (await responses.storage("a2")).used == 0  # another account holds nothing
    second = await responses.create(_record("resp_2", text="x" * 5000), 60)
    assert (await responses.storage("a1")).used == size + second
    assert await responses.delete("a1", "resp_1")
    assert (await responses.storage("a1")).used == second
    assert not await responses.delete("a1", "resp_1")  # nothing is given back twice
    assert await responses.delete("a1", "resp_2")
    held = await responses.storage("a1")
    assert (held.used, held.responses) == (0, 0)


async def test_a_replaced_record_counts_once(store) -> None:
    await store.responses.create(_record(text="a" * 4000), 60)
    size = await store.responses.create(_record(text="b"), 60)
    assert (await store.responses.storage("a1")).used == size


async def test_appends_count_their_events_and_the_new_object(store) -> None:
    responses = store.responses
    queued = StoredResponse(
        id="resp_bg",
        account="a1",
        response={"id": "resp_bg", "status": "queued", "output": []},
        input_items=[{"type": "message", "id": "msg_in"}],
        status="queued",
        background=True,
    )
    size = await responses.create(queued, 60)
    start = Change(expect="queued", status="in_progress", claim="att")
    assert await responses.append("a1", "resp_bg", [b'{"n":1}'], start, 60) == 1
    final = {"id": "resp_bg", "status": "completed", "output": [{"type": "message", "id": "m_9"}]}
    end = Change(attempt="att", status="completed", response=final)
    assert await responses.append("a1", "resp_bg", [b'{"n":22}'], end, 60) == 2
    got = await responses.get("a1", "resp_bg")
    assert got is not None
    logged = [data for _, data in await responses.events("a1", "resp_bg", -1, 0)]
    # Exactly what the finished record and its log would count if written at once.
    assert (await responses.storage("a1")).used == record_size(got, logged)
    assert record_size(got, logged) == size + len(b'{"n":1}{"n":22}') + (
        record_size(got) - record_size(queued)
    )
    assert await responses.find_items("a1", ["m_9", "msg_in"]) == ["resp_bg", "resp_bg"]


async def test_room_refuses_past_the_limit_or_the_cap(store) -> None:
    responses = store.responses
    record = _record()
    size = record_size(record)
    assert await responses.create(record, 60, room=Room(limit=size - 1)) == OVER_LIMIT
    assert await responses.create(record, 60, room=Room(cap=size - 1)) == OVER_CAP
    assert (await responses.storage("a1")).used == 0  # a refused write stores nothing
    assert await responses.get("a1", "resp_1") is None
    # Not strict: an answer already given is kept past the limit (never past the cap).
    assert await responses.create(record, 60, room=Room(size - 1, None, strict=False)) == size
    assert await responses.create(_record("resp_2"), 60, room=Room(limit=size)) == OVER_LIMIT
    # Another account is bound by its own bytes only.
    other = _record("resp_2", "a2")
    assert await responses.create(other, 60, room=Room(limit=record_size(other))) == (
        record_size(other)
    )


async def test_an_append_past_a_bound_is_refused_whole(store) -> None:
    responses = store.responses
    queued = StoredResponse(
        id="resp_bg", account="a1", response={"id": "resp_bg"}, status="queued", background=True
    )
    size = await responses.create(queued, 60)
    event = b"e" * 100
    room = Room(limit=size + 150)
    assert await responses.append("a1", "resp_bg", [event], Change(), 60, room) == 1
    assert await responses.append("a1", "resp_bg", [event], Change(), 60, room) == OVER_LIMIT
    assert await responses.append("a1", "resp_bg", [event], Change(), 60, Room(cap=size + 150)) == (
        OVER_CAP
    )
    assert len(await responses.events("a1", "resp_bg", -1, 0)) == 1
    assert (await responses.storage("a1")).used == size + 100
    # Without a room (a terminal failure, a cancel), an append is counted, never refused.
    assert await responses.append("a1", "resp_bg", [event], Change(status="failed"), 60) == 2
    assert (await responses.storage("a1")).used == size + 200


async def test_expired_responses_give_their_bytes_and_index_back(store) -> None:
    responses = store.responses
    await responses.create(_record("resp_short"), 0.3)
    kept = await responses.create(_record("resp_long"), 60)
    assert (await responses.storage("a1")).responses == 2
    deadline = Deadline(10)
    while (await responses.storage("a1")).responses != 1:
        deadline.check("the expired response was still counted")
        await asyncio.sleep(0.05)
    assert (await responses.storage("a1")).used == kept
    assert await responses.find_items("a1", ["msg_out_resp_short", "msg_in_resp_long"]) == [
        None,
        "resp_long",
    ]


async def test_the_item_index_is_account_scoped_and_dies_with_the_response(store) -> None:
    responses = store.responses
    await responses.create(_record("resp_1"), 60)
    assert await responses.find_items("a1", ["msg_in_resp_1", "msg_out_resp_1", "nope"]) == [
        "resp_1",
        "resp_1",
        None,
    ]
    assert await responses.find_items("a2", ["msg_in_resp_1"]) == [None]
    # Copies of items another response holds stay indexed to that one.
    copy = _record("resp_2")
    copy.input_items = [{"type": "message", "id": "msg_out_resp_1"}]
    size = await responses.create(copy, 60, unindexed={"msg_out_resp_1"})
    assert size == record_size(copy) - item_bytes("msg_out_resp_1", "resp_2")
    assert await responses.find_items("a1", ["msg_out_resp_1"]) == ["resp_1"]
    await responses.delete("a1", "resp_1")
    assert await responses.find_items("a1", ["msg_in_resp_1", "msg_out_resp_1"]) == [None, None]


async def test_room_at_says_when_enough_has_expired(store) -> None:
    responses = store.responses
    first = await responses.create(_record("resp_1"), 60)
    second = await responses.create(_record("resp_2"), 120)
    now = time.time()
    limit = first + second
    assert (await responses.storage("a1", 10, limit)).room_at is not None
    fits_after_first = await responses.storage("a1", first, limit)
    assert fits_after_first.room_at is not None and 30 < fits_after_first.room_at - now <= 61
    fits_after_both = await responses.storage("a1", first + second, limit)
    assert fits_after_both.room_at is not None and 90 < fits_after_both.room_at - now <= 121
    assert (await responses.storage("a1", limit + 1, limit)).room_at is None  # never

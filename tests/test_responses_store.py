"""The response store and job queue behave the same on memory:// and redis://."""

from __future__ import annotations

import asyncio

import pytest

from edge.store import StoreUnavailable, open_store
from edge.store.responses import FENCED, MISSING, REFUSED, Change, StoredResponse
from edge.store.responses_jobs import RedisJobs
from tests.support.clock import Deadline

pytestmark = pytest.mark.redis_modes


@pytest.fixture
async def store(store_url):
    async with open_store(store_url, redis_timeout=1.0) as opened:
        yield opened


def _record(rid: str = "resp_1", account: str = "a1", status: str = "queued") -> StoredResponse:
    return StoredResponse(
        id=rid,
        account=account,
        response={"id": rid, "status": status},
        input_items=[{"type": "message", "id": "msg_1"}],
        status=status,
        background=True,
        job={"model": "local/echo"},
    )


async def test_records_are_scoped_to_the_account(store) -> None:
    await store.responses.create(_record(), ttl=60)
    got = await store.responses.get("a1", "resp_1")
    assert got is not None and got.input_items == [{"type": "message", "id": "msg_1"}]
    assert got.job == {"model": "local/echo"} and got.status == "queued"
    assert await store.responses.get("a2", "resp_1") is None
    assert not await store.responses.delete("a2", "resp_1")
    assert await store.responses.delete("a1", "resp_1")
    assert await store.responses.get("a1", "resp_1") is None


async def test_records_expire(store) -> None:
    await store.responses.create(_record(), ttl=0.2)
    assert await store.responses.get("a1", "resp_1") is not None
    deadline = Deadline(10)
    while await store.responses.get("a1", "resp_1") is not None:
        deadline.check("record outlived its retention")
        await asyncio.sleep(0.05)


async def test_append_numbers_events_and_guards_the_terminal_status(store) -> None:
    responses = store.responses
    await responses.create(_record(), ttl=60, events=[b'{"type":"response.created"}'])
    start = Change(expect="queued", status="in_progress", claim="att1")
    assert await responses.append("a1", "resp_1", [b'{"n":1}'], start, 60) == 2
    # A second start loses: the status is no longer queued.
    assert await responses.append("a1", "resp_1", [b"{}"], start, 60) == REFUSED
    assert await responses.append("a1", "resp_1", [b"{}"], Change(attempt="other"), 60) == FENCED
    assert await responses.append("a1", "resp_1", [b'{"n":2}'], Change(attempt="att1"), 60) == 3
    end = Change(attempt="att1", status="completed", response={"id": "resp_1", "done": True})
    assert await responses.append("a1", "resp_1", [b'{"n":3}'], end, 60) == 4
    # Exactly one terminal transition: every later writer is refused.
    cancel = Change(status="cancelled")
    assert await responses.append("a1", "resp_1", [b"{}"], cancel, 60) == REFUSED
    assert await responses.append("a1", "nope", [b"{}"], cancel, 60) == MISSING
    got = await responses.get("a1", "resp_1")
    assert got is not None and got.status == "completed" and got.response["done"] is True
    events = await responses.events("a1", "resp_1", -1, 0)
    assert [seq for seq, _ in events] == [0, 1, 2, 3]
    assert await responses.events("a1", "resp_1", 1, 0) == [(2, b'{"n":2}'), (3, b'{"n":3}')]


async def test_a_waiting_reader_wakes_on_append(store) -> None:
    await store.responses.create(_record(), ttl=60)
    # The reader would wait 20 s for an event and then answer none: answering with the event
    # within the deadline below (a bound on the test's own run time, half of that wait) shows
    # the append woke it.
    reader = asyncio.create_task(store.responses.events("a1", "resp_1", -1, 20.0))
    await asyncio.sleep(0.05)
    assert not reader.done()  # waiting
    await store.responses.append("a1", "resp_1", [b'{"x":1}'], Change(), 60)
    assert await asyncio.wait_for(reader, 10) == [(0, b'{"x":1}')]


async def test_queue_delivers_each_job_once(store) -> None:
    await store.jobs.push("a1", "resp_1")
    await store.jobs.push("a1", "resp_2")
    first = await store.jobs.take(1.0, lease=30)
    second = await store.jobs.take(1.0, lease=30)
    assert first is not None and second is not None
    assert {first.response_id, second.response_id} == {"resp_1", "resp_2"}
    assert not first.taken_over
    assert await store.jobs.take(0.05, lease=30) is None
    await store.jobs.done(first)
    await store.jobs.done(second)


async def test_a_job_whose_consumer_stops_renewing_is_taken_over(redis_server) -> None:
    redis_server.command("FLUSHALL")
    async with open_store(redis_server.url, redis_timeout=1.0) as store:
        assert store.redis is not None
        dead = RedisJobs(store.redis, store.redis)
        alive = RedisJobs(store.redis, store.redis)
        await dead.push("a1", "resp_1")
        job = await dead.take(1.0, lease=0.3)
        assert job is not None
        # Renewed: not stale yet.
        await asyncio.sleep(0.2)
        await dead.renew(job)
        assert await alive.take(0.05, lease=0.3) is None
        # The owner stops renewing; after the lease another consumer claims it, marked as such.
        await asyncio.sleep(0.4)
        claimed = await alive.take(0.05, lease=0.3)
        assert claimed is not None and claimed.taken_over and claimed.response_id == "resp_1"
        await alive.done(claimed)
        await asyncio.sleep(0.4)
        assert await alive.take(0.05, lease=0.3) is None


async def test_a_released_job_is_taken_at_once(store) -> None:
    """A job given back at shutdown is taken again without waiting for any lease."""
    await store.jobs.push("a1", "resp_1")
    job = await store.jobs.take(1.0, lease=30)
    assert job is not None
    assert await store.jobs.take(0.05, lease=30) is None  # held: nobody else gets it
    await store.jobs.release(job)
    again = await store.jobs.take(1.0, lease=30)  # a lease of 30 s has not passed
    assert again is not None and again.response_id == "resp_1"
    await store.jobs.done(again)
    assert await store.jobs.take(0.05, lease=30) is None


async def test_the_queue_recovers_when_redis_loses_its_data(redis_server) -> None:
    redis_server.command("FLUSHALL")
    async with open_store(redis_server.url, redis_timeout=1.0) as store:
        assert await store.jobs.take(0.05, lease=30) is None  # the group exists now
        redis_server.command("FLUSHALL")  # as after a restart without persistence
        with pytest.raises(StoreUnavailable, match="NOGROUP"):  # the store says so, once
            await store.jobs.take(0.05, lease=30)
        await store.jobs.push("a1", "resp_1")
        job = await store.jobs.take(1.0, lease=30)
        assert job is not None and job.response_id == "resp_1"

"""Background responses in one gateway, on memory:// and redis://: queued at once, run by the
process's worker, replayed and followed from the event log, cancelled, and settled once."""

from __future__ import annotations

import asyncio
import json

import openai
import orjson
import pytest

from tests.support.clock import Deadline, Stopwatch, wait_until
from tests.support.fake_upstream import Scenario
from tests.support.gateway import gateway_env, settings_for, start_live, stop_live
from tests.test_responses_passthrough import BY_NAME, frames_of, parse_sse
from tests.test_responses_schema import validate_object, validate_stream

TERMINAL = ("completed", "failed", "cancelled", "incomplete")


def slow_frames() -> list[bytes]:
    """A long recorded stream; sent with a delay per frame, it runs for seconds."""
    return frames_of(BY_NAME["lmstudio-basic.1.chunks.txt"])


@pytest.fixture
async def tenant(gateway):
    return await gateway.tenant()


@pytest.fixture
async def client(gateway, tenant):
    sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{gateway.url}/v1", max_retries=0)
    yield sdk
    await sdk.close()


async def wait_status(client, response_id: str, want: tuple[str, ...], timeout: float = 10):
    deadline = Deadline(timeout)
    while True:
        resp = await client.responses.retrieve(response_id)
        if resp.status in want:
            return resp
        deadline.check(f"still {resp.status}")
        await asyncio.sleep(0.02)


async def log_events(url: str, key: str, http, response_id: str, after: int | None = None):
    """The response's event stream as the gateway sends it (to its end)."""
    query = "stream=true" + (f"&starting_after={after}" if after is not None else "")
    async with http.get(
        f"{url}/v1/responses/{response_id}?{query}", headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        assert resp.status == 200, await resp.text()
        raw = await resp.read()
    named = parse_sse(raw)
    events = [json.loads(data) for _, data in named]
    assert [n for n, _ in named] == [e["type"] for e in events]
    return events


async def test_background_run_is_queued_then_completed(client, gateway, tenant) -> None:
    raw = await client.responses.with_raw_response.create(
        model="local/echo", input="in the background", background=True
    )
    queued = orjson.loads(raw.http_response.content)
    validate_object(queued)
    assert (queued["status"], queued["background"], queued["output"]) == ("queued", True, [])
    done = await wait_status(client, queued["id"], TERMINAL)
    assert done.status == "completed" and done.output_text == "Echo: in the background"
    raw = await client.responses.with_raw_response.retrieve(done.id)
    stored = orjson.loads(raw.http_response.content)
    validate_object(stored)
    events = await log_events(gateway.url, tenant.key, gateway.http, done.id)
    validate_stream(events)
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert events[-1]["response"] == stored
    # Resume after any point: exactly the events after it.
    later = await log_events(gateway.url, tenant.key, gateway.http, done.id, after=4)
    assert later == events[5:]
    assert await log_events(gateway.url, tenant.key, gateway.http, done.id, after=99) == []


async def test_background_with_stream_true_follows_the_log(client) -> None:
    stream = await client.responses.create(
        model="local/echo", input="live words", background=True, stream=True
    )
    kinds, text, seqs = [], "", []
    async for event in stream:
        kinds.append(event.type)
        seqs.append(event.sequence_number)
        if event.type == "response.output_text.delta":
            text += event.delta
    assert text == "Echo: live words"
    assert seqs == list(range(len(seqs)))
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"


async def test_usage_is_settled_once_by_the_worker(client, gateway, tenant) -> None:
    resp = await client.responses.create(model="local/echo", input="a b c", background=True)
    done = await wait_status(client, resp.id, TERMINAL)
    assert done.usage is not None
    expect = (1, done.usage.input_tokens, done.usage.output_tokens)
    deadline = Deadline(10)
    while True:
        _, body = await gateway.admin("GET", f"/keys/{tenant.key_id}/usage")
        today = body["today"]
        got = (today["requests"], today["input_tokens"], today["output_tokens"])
        if got == expect or deadline.passed():
            break
        await asyncio.sleep(0.02)
    assert got == expect


async def test_cancel_stops_the_upstream_and_ends_the_stream(client, gateway, tenant, fake):
    fake.push(Scenario(frames=slow_frames(), delay_chunks=0.1))
    resp = await client.responses.create(model="gpt-5-4", input="long", background=True)
    await wait_status(client, resp.id, ("in_progress",))
    follower = asyncio.create_task(log_events(gateway.url, tenant.key, gateway.http, resp.id))
    await wait_until(lambda: fake.open_streams > 0, "the provider stream never opened")
    raw = await client.responses.with_raw_response.cancel(resp.id)
    cancelled = orjson.loads(raw.http_response.content)
    validate_object(cancelled)
    assert cancelled["status"] == "cancelled"
    events = await asyncio.wait_for(follower, 5)
    validate_stream(events)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["status"] == "cancelled"
    # The provider's stream was closed, long before its end.
    await wait_until(lambda: fake.open_streams == 0, "upstream still open after cancel")
    # Cancelling again returns it unchanged; nothing is logged after the terminal event.
    again = await client.responses.cancel(resp.id)
    assert again.status == "cancelled"
    assert await log_events(gateway.url, tenant.key, gateway.http, resp.id) == events


async def test_passthrough_background_is_readdressed_to_our_id(client, gateway, tenant, fake):
    fake.push(Scenario(frames=frames_of(BY_NAME["lmstudio-tool-call.1.chunks.txt"])))
    resp = await client.responses.create(model="gpt-5-4", input="weather", background=True)
    done = await wait_status(client, resp.id, TERMINAL)
    assert done.status == "completed" and done.id == resp.id
    assert [o.type for o in done.output] == ["reasoning", "message", "function_call"]
    sent = fake.requests[-1].body
    assert sent["stream"] is True and "background" not in sent
    events = await log_events(gateway.url, tenant.key, gateway.http, resp.id)
    assert {e["response"]["id"] for e in events if "response" in e} == {resp.id}
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


async def test_upstream_failure_fails_the_run(client, gateway, tenant, fake) -> None:
    fake.push(Scenario(status=500, body=b'{"error":{"message":"boom"}}'))
    resp = await client.responses.create(model="gpt-5-4", input="x", background=True)
    failed = await wait_status(client, resp.id, TERMINAL)
    assert failed.status == "failed" and failed.error is not None
    events = await log_events(gateway.url, tenant.key, gateway.http, resp.id)
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    validate_stream(events)


async def test_delete_cancels_a_running_response(client, gateway, tenant, fake) -> None:
    fake.push(Scenario(frames=slow_frames(), delay_chunks=0.1))
    resp = await client.responses.create(model="gpt-5-4", input="long", background=True)
    await wait_status(client, resp.id, ("in_progress",))
    await client.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(resp.id)
    await wait_until(lambda: fake.open_streams == 0, "upstream still open after delete")


async def test_streaming_a_foreground_response_is_refused(client, gateway, tenant) -> None:
    resp = await client.responses.create(model="local/echo", input="x")
    async with gateway.http.get(
        f"{gateway.url}/v1/responses/{resp.id}?stream=true",
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as got:
        assert got.status == 400


async def stop_just_after_starting(store_url: str, fake_url: str) -> float:
    """Start a gateway and stop it at once, while its worker opens its first queue connection;
    how long the stop took (a figure: tests/soak holds it under the blocking read's second)."""
    live = await start_live(settings_for(gateway_env(store_url, fake_url)))
    took = Stopwatch()
    await asyncio.wait_for(stop_live(live), 30)  # bounds the test's own run time
    return took.elapsed()


async def test_a_gateway_stops_even_just_after_starting(store_url, fake) -> None:
    # Stopping while the worker opens its first queue connection must not hang. (That it
    # does not wait for a blocking read of the queue, up to a second, to time out is a
    # duration: tests/soak/test_durations_soak.py.)
    took = [await stop_just_after_starting(store_url, fake.url) for _ in range(3)]
    print("stopped after " + ", ".join(f"{t * 1000:.0f}" for t in took) + " ms")


async def test_a_follower_that_disconnects_leaves_the_log_readable(client, gateway, tenant, fake):
    fake.push(Scenario(frames=slow_frames(), delay_chunks=0.05))
    resp = await client.responses.create(model="gpt-5-4", input="long", background=True)
    for _ in range(3):
        async with gateway.http.get(
            f"{gateway.url}/v1/responses/{resp.id}?stream=true",
            headers={"Authorization": f"Bearer {tenant.key}"},
        ) as got:
            assert got.status == 200
            assert await got.content.readany()
        # Leaving the block closes the connection mid-stream.
    await client.responses.cancel(resp.id)
    events = await asyncio.wait_for(log_events(gateway.url, tenant.key, gateway.http, resp.id), 5)
    validate_stream(events)
    assert events[-1]["response"]["status"] == "cancelled"

"""A hundred clients abort at random points (before the answer, mid-stream, relayed or
translated from another provider's stream): the provider sees every call closed long before
its stream would have ended, concurrency slots and token holds all come back, and what each cut
stream did is charged. (How soon each close follows its client's leaving is a printed figure
here; tests/soak/test_durations_soak.py holds it to a second.)"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.support.clock import Deadline, stamp, wait_until
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, Tenant, gateway_env, settings_for, start_live, stop_live
from tests.support.rawhttp import connect, request_bytes
from tests.support.streams import PATHS, frames

pytestmark = pytest.mark.timeout(90)
CLIENTS = 100
# Each provider stream would run 8 s to its end (400 frames, 20 ms apart); every client leaves
# before its 20th event. A call the fake saw closed was closed because its client left.
FRAMES = 400
ABORT_POINTS = [-1, *range(1, 20)]


@dataclass
class Client:
    """One aborting client: where it gave up, and what it had read."""

    n: int
    model: str  # gpt-5-4: relayed; claude-sonnet-4-6: translated from the Anthropic stream
    abort_after: int  # SSE events to read before leaving; -1: leave before the answer
    events: int = 0
    left_at: float = 0.0


async def run_client(live: Live, key: str, client: Client) -> None:
    body = {
        "model": client.model,
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": f"client-{client.n}"}],
    }
    reader, writer = await connect(live.url)
    path = "/v1/chat/completions"
    writer.write(request_bytes("POST", path, body, Authorization=f"Bearer {key}"))
    await writer.drain()
    try:
        if client.abort_after < 0:
            await asyncio.sleep(random.uniform(0, 0.03))
        else:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200"), head
            buffered = b""
            while client.events < client.abort_after:
                chunk = await asyncio.wait_for(reader.read(4096), 10)
                if not chunk:
                    break
                buffered += chunk
                client.events = buffered.count(b"\n\n")
    finally:
        writer.transport.abort()  # gone, without a goodbye
        client.left_at = stamp()


@pytest.fixture
async def gateway(store_url: str, fake: FakeUpstream) -> AsyncIterator[Live]:
    """A gateway on each store. A hundred clients share two cores with the rest of the suite:
    a 100 ms Redis timeout would fire because the event loop is busy, and budgets would then
    fail closed (503); what fails here is meant to be the clients, not Redis."""
    env = gateway_env(store_url, fake.url, EDGE_REDIS_TIMEOUT="0.5")
    live = await start_live(settings_for(env))
    yield live
    await stop_live(live)


async def hundred_aborts(gateway: Live, fake: FakeUpstream) -> tuple[Tenant, list[Client]]:
    """A hundred clients abort at random points; returns once the provider has seen every call
    it received closed before its end (each `Seen.disconnected_at` is set)."""
    rng = random.Random(8)
    tenant = await gateway.tenant(
        quota={"tokens_per_day": 10_000_000, "max_concurrent": CLIENTS * 2}
    )
    clients = [
        Client(
            n=n,
            model="claude-sonnet-4-6" if n % 3 == 0 else "gpt-5-4",
            abort_after=rng.choice(ABORT_POINTS),
        )
        for n in range(CLIENTS)
    ]
    for wire in ("chat", "messages"):
        fake.by_path[PATHS[wire]] = Scenario(frames=frames(wire, FRAMES), delay_chunks=0.02)
    await asyncio.gather(*(run_client(gateway, tenant.key, c) for c in clients))
    # A stream the fake sent to its end is not a disconnect: it would leave this waiting.
    await wait_until(
        lambda: all(s.disconnected_at is not None for s in fake.requests),
        "provider calls still open",
        seconds=20,
    )
    return tenant, clients


def close_lags(fake: FakeUpstream, clients: list[Client]) -> list[float]:
    """For each provider call, seconds from its client leaving to the provider seeing it
    closed: a figure to print (tests/soak holds it to a bound)."""
    by_marker = {c.n: c for c in clients}
    lags = []
    for seen in fake.requests:
        marker = int(seen.raw.split(b"client-")[1].split(b'"')[0])
        assert seen.disconnected_at is not None
        lags.append(seen.disconnected_at - by_marker[marker].left_at)
    return lags


async def test_a_hundred_clients_abort_at_random_points(gateway: Live, fake: FakeUpstream) -> None:
    tenant, clients = await hundred_aborts(gateway, fake)
    # The provider saw every call it received closed, and sent none of them to its end.
    whole = {PATHS[w]: len(b"".join(frames(w, FRAMES))) for w in ("chat", "messages")}
    assert fake.requests
    assert all(seen.sent < whole[seen.path] for seen in fake.requests)
    lags = close_lags(fake, clients)
    assert fake.open_streams == 0

    # Slots and holds all come back: nothing in flight, and the token counter holds exactly
    # what was recorded (an unsettled hold would show up as the difference).
    async def settled() -> tuple[int, int, dict[str, int]] | None:
        status, usage = await gateway.admin("GET", f"/keys/{tenant.key_id}/usage")
        assert status == 200
        used = next(r["used"] for r in usage["limits"] if r["name"] == "tokens_per_day")
        today = usage["today"]
        recorded = today["input_tokens"] + today["output_tokens"]
        if usage["in_flight"] == 0 and used == recorded:
            return used, recorded, today
        return None

    # A settlement that met a busy Redis is retried (after 0.25, 0.5, 1, 2 s...): allow it.
    deadline = Deadline(20)
    while (result := await settled()) is None:
        if deadline.passed():
            raise AssertionError(await gateway.admin("GET", f"/keys/{tenant.key_id}/usage"))
        await asyncio.sleep(0.05)
    _, _, today = result
    # Partial usage: every call the provider served is charged its input, and at least one
    # output token per event a client read.
    mid_stream = [c for c in clients if c.events > 1]
    assert today["requests"] >= len(fake.requests)
    assert today["input_tokens"] >= len(fake.requests)
    assert today["output_tokens"] >= sum(c.events - 1 for c in mid_stream) > 0
    print(
        f"{len(fake.requests)} provider calls, slowest close {max(lags) * 1000:.0f} ms after "
        f"the client left; charged {today['input_tokens']} in / {today['output_tokens']} out"
    )

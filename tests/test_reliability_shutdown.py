"""SIGTERM with streams open on every client API (relayed and translated): readiness turns 503,
each stream ends normally or with its API's `server_shutdown` event, the process exits 0, and
no provider connection outlives it: every one was closed by the gateway itself before it
exited. (test_shutdown.py covers the grace period and the drain log lines on Chat Completions;
how soon readiness turns 503 is a printed figure, held to the grace period by
tests/soak/test_durations_soak.py.)"""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import orjson
import pytest

from tests.support.clock import Deadline, Stopwatch, stamp
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import GatewayProcess, Live, gateway_env
from tests.support.readers import sse_events
from tests.support.streams import Wire, frames

pytestmark = pytest.mark.timeout(60)
GRACE = 0.3
TIMEOUT = 1.5
MESSAGES = [{"role": "user", "content": "hi"}]
# (client route, body, provider wire): each a relayed call, and a translated one.
STREAMS: list[tuple[str, dict[str, object], Wire]] = [
    ("/v1/chat/completions", {"model": "gpt-5-4", "messages": MESSAGES}, "chat"),
    ("/v1/responses", {"model": "gpt-5-4", "input": "hi", "store": False}, "responses"),
    (
        "/v1/messages",
        {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": MESSAGES},
        "messages",
    ),
    (
        "/v1beta/models/gemini-2-5-flash:streamGenerateContent?alt=sse",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        "gemini",
    ),
    (
        "/v1/chat/completions",
        {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": MESSAGES},
        "messages",
    ),
]


def ending(raw: bytes) -> str:
    """`normal`, `shutdown`, or the last event when it is neither."""
    events = sse_events(raw)
    if not events:
        return "empty"
    name, data = events[-1]
    if data == "[DONE]" or name == "message_stop":
        return "normal"
    body = orjson.loads(data)
    kind = body.get("type")
    if kind == "response.completed" or ('"finishReason"' in data and "error" not in body):
        return "normal"
    if kind == "response.failed":
        return "shutdown" if body["response"]["error"]["code"] == "server_shutdown" else data
    message = body.get("error", {}).get("message", "")
    return "shutdown" if "shut down" in message else data[:200]


async def test_sigterm_with_streams_on_every_api(fake: FakeUpstream) -> None:
    env = gateway_env(
        "memory://",
        fake.url,
        EDGE_SHUTDOWN_GRACE=str(GRACE),
        EDGE_SHUTDOWN_TIMEOUT=str(TIMEOUT),
    )
    proc = GatewayProcess(env).start()
    try:
        async with aiohttp.ClientSession() as http:
            tenant = await Live(url=proc.url, http=http).tenant()
            started: asyncio.Queue[int] = asyncio.Queue()

            async def one(path: str, body: dict[str, object]) -> bytes:
                stream_body = body if "Generate" in path else {**body, "stream": True}
                async with http.post(
                    f"{proc.url}{path}",
                    json=stream_body,
                    headers={"Authorization": f"Bearer {tenant.key}"},
                ) as resp:
                    assert resp.status == 200, await resp.text()
                    first = await resp.content.readany()
                    started.put_nowait(1)
                    return first + await resp.read()

            tasks = []
            for i, (path, body, wire) in enumerate(STREAMS * 2):
                # Half finish within the shutdown timeout; half would run for ever.
                events = frames(wire, 8 if i % 2 == 0 else 100_000)
                fake.push(Scenario(frames=events, delay_chunks=0.1))
                tasks.append(asyncio.create_task(one(path, body)))
                await asyncio.wait_for(started.get(), 10)  # in push order
            signalled = Stopwatch()
            proc.signal(signal.SIGTERM)
            ready = Deadline(10)
            while True:
                async with http.get(f"{proc.url}/readyz") as resp:
                    if resp.status == 503:
                        break
                ready.check("still ready after SIGTERM")
                await asyncio.sleep(0.02)
            ready_off = signalled.elapsed()
            # Bounds on the test's own run time, with room above the grace and the timeout.
            bodies = await asyncio.wait_for(asyncio.gather(*tasks), GRACE + TIMEOUT + 30)
            assert proc.proc is not None
            code = await asyncio.to_thread(proc.proc.wait, 30)
            exited = stamp()
    finally:
        proc.kill()
    assert code == 0
    ends = [ending(raw) for raw in bodies]
    assert ends == ["normal", "shutdown"] * len(STREAMS), ends
    # No orphaned provider connection: each was closed by the gateway before it exited.
    assert len(fake.requests) == len(STREAMS) * 2
    assert fake.open_streams == 0
    for seen in fake.requests[1::2]:
        assert seen.disconnected_at is not None and seen.disconnected_at <= exited
    exit_after = exited - signalled.started
    print(f"readiness off after {ready_off * 1000:.0f} ms; exit after {exit_after:.1f} s")

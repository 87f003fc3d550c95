"""The HTTP server under hostile clients: the C parser or no start, explicit header limits,
malformed requests refused with a 4xx (never a 500, never a traceback in the logs), a deadline
for request heads and bodies, and a client leaving a request stopping its provider call. When
the deadlines fire and how soon the provider call stops are printed figures here;
tests/soak/test_durations_soak.py holds them to their bounds."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import orjson
import pytest

from edge.server import MAX_FIELD_SIZE, MAX_HEADERS
from tests.support.clock import Stopwatch, stamp, wait_until
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.ports import free_port
from tests.support.rawhttp import (
    RawAnswer,
    closed_after,
    connect,
    exchange,
    read_answer,
    request_bytes,
)

LiveFactory = Callable[..., Coroutine[Any, Any, Live]]


@pytest.fixture
async def live_with(fake: FakeUpstream) -> AsyncIterator[LiveFactory]:
    """Start an in-process gateway with extra EDGE_* settings."""
    started: list[Live] = []

    async def start(**env: str) -> Live:
        live = await start_live(settings_for(gateway_env("memory://", fake.url, **env)))
        started.append(live)
        return live

    yield start
    for live in started:
        await stop_live(live)


def test_refuses_to_start_on_the_pure_python_parser() -> None:
    env = {**os.environ, **gateway_env("memory://", None), "AIOHTTP_NO_EXTENSIONS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        timeout=30,  # bounds the test's own run time: a gateway that started would meet it
        check=False,
    )
    assert proc.returncode != 0
    assert b"C HTTP parser" in proc.stderr + proc.stdout


async def test_header_limits_are_explicit_and_answered_431(live_with: LiveFactory) -> None:
    live = await live_with()
    ok = await exchange(live.url, request_bytes("GET", "/healthz", X_Pad="a" * 4000))
    assert ok.status == 200
    for raw in (
        request_bytes("GET", "/healthz", X_Pad="a" * (MAX_FIELD_SIZE + 1)),
        request_bytes("GET", "/healthz", **{f"X_H{i}": "1" for i in range(MAX_HEADERS + 1)}),
        request_bytes("GET", "/" + "a" * (MAX_FIELD_SIZE + 1)),
    ):
        answer = await exchange(live.url, raw)
        assert answer.status == 431, answer
        assert answer.headers["server"] == "edge"
        body = answer.json()
        assert isinstance(body, dict)
        assert body["error"]["message"] == "Request line or header fields too large."


AUTH = "Bearer ek_unknown_0123456789"
MALFORMED = {
    "content-length and chunked": b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n"
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate host": b"GET /v1/models HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "duplicate content-length": b"POST /v1/messages HTTP/1.1\r\nHost: a\r\n"
    b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "negative content-length": b"POST /v1/responses HTTP/1.1\r\nHost: a\r\n"
    b"Content-Length: -1\r\n\r\n",
    "bad chunk size": b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "binary method": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "space before colon": b"GET /v1/models HTTP/1.1\r\nHost : a\r\n\r\n",
    "obsolete line folding": b"GET /v1/models HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
    "bare LF": b"GET /healthz HTTP/1.1\nHost: a\n\n",
    "NUL in a header": b"GET /v1/models HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n",
    "bad version": b"GET /v1/models HTTP/9.9\r\nHost: a\r\n\r\n",
}


async def test_malformed_requests_are_refused_without_a_traceback(
    live_with: LiveFactory, caplog: pytest.LogCaptureFixture
) -> None:
    live = await live_with()
    caplog.set_level(logging.INFO)
    for name, raw in MALFORMED.items():
        answer = await exchange(live.url, raw)
        assert 400 <= answer.status < 500, (name, answer)
        assert answer.headers["server"] == "edge", name
        body = answer.json()
        assert isinstance(body, dict) and body["error"]["message"], name
        assert b"\\x" not in answer.body  # the client's bytes are not echoed back
    # A malformed request is the client's doing: nothing is logged as an error.
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert (await exchange(live.url, request_bytes("GET", "/healthz"))).status == 200


async def trickled_head(live: Live) -> float:
    """A request head sent a byte every 50 ms and never finished: only a deadline on heads
    closes the connection. Returns when, in seconds after the first byte (a figure)."""
    reader, writer = await connect(live.url)
    took = Stopwatch()

    async def trickle() -> None:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 100:
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)

    sender = asyncio.create_task(trickle())
    await closed_after(reader, 30.0)  # bounds the test's own run time
    closed_at = took.elapsed()
    sender.cancel()
    writer.close()
    return closed_at


async def test_a_request_head_trickling_in_is_closed_at_the_deadline(
    live_with: LiveFactory,
) -> None:
    live = await live_with(EDGE_HEADER_TIMEOUT="1")
    closed_at = await trickled_head(live)
    print(f"trickling head closed after {closed_at:.3f} s (deadline 1 s)")
    # An idle keep-alive connection is not a slow head: it outlives the head deadline.
    reader, writer = await connect(live.url)
    writer.write(request_bytes("GET", "/healthz"))
    assert (await read_answer(reader)).status == 200
    await asyncio.sleep(1.5)
    writer.write(request_bytes("GET", "/healthz"))
    assert (await read_answer(reader)).status == 200
    writer.close()


async def unfinished_body(live: Live) -> tuple[RawAnswer, float]:
    """A request whose body stops arriving: the gateway's answer, and when it came, in
    seconds after the last byte sent (a figure)."""
    tenant = await live.tenant()
    reader, writer = await connect(live.url)
    head = (
        "POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"x-api-key: {tenant.key}\r\nContent-Length: 1000\r\n\r\n"
    )
    writer.write(head.encode() + b'{"model": ')
    took = Stopwatch()
    answer = await read_answer(reader, timeout=30)  # bounds the test's own run time
    elapsed = took.elapsed()
    writer.close()
    return answer, elapsed


async def test_a_body_trickling_in_is_refused_at_the_deadline(live_with: LiveFactory) -> None:
    live = await live_with(EDGE_BODY_TIMEOUT="1")
    answer, elapsed = await unfinished_body(live)
    assert answer.status == 408  # the body deadline's answer: nothing else sends a 408
    print(f"trickling body refused after {elapsed:.3f} s (deadline 1 s)")
    body = answer.json()
    assert body == {
        "type": "error",
        "error": {"type": "timeout_error", "message": "The request body did not arrive in time."},
    }
    assert answer.headers["connection"].lower() == "close"


async def leave_a_waiting_request(live: Live, fake: FakeUpstream) -> float:
    """A client leaves while the provider has not answered (it would, after a minute, and
    that answer would not count as a disconnect): the gateway closes the provider call.
    Returns how long after the client left (a figure)."""
    tenant = await live.tenant()
    fake.push(Scenario(body=b"{}", delay_headers=60))
    before = len(fake.requests)
    _, writer = await connect(live.url)
    body = {"model": "gpt-5-4", "messages": [{"role": "user", "content": "x"}]}
    writer.write(
        request_bytes("POST", "/v1/chat/completions", body, Authorization=f"Bearer {tenant.key}")
    )
    await wait_until(
        lambda: len(fake.requests) > before, "the provider was never called", poll=0.01
    )
    seen = fake.requests[-1]
    writer.transport.abort()
    left = stamp()
    await wait_until(
        lambda: seen.disconnected_at is not None, "provider call still open", 20, poll=0.01
    )
    assert seen.disconnected_at is not None
    assert orjson.dumps(seen.body)  # the call was a real one
    return seen.disconnected_at - left


async def test_a_client_leaving_a_waiting_request_closes_its_provider_call(
    live_with: LiveFactory, fake: FakeUpstream
) -> None:
    live = await live_with()
    lag = await leave_a_waiting_request(live, fake)
    print(f"provider call closed {lag * 1000:.0f} ms after the client left")

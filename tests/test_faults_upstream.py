"""Upstream faults through every client API (relayed to its own provider, and translated from
another's): refused, no headers in time, reset mid-stream, an in-band error event, a 5xx with
secrets in it, a 429 with rate-limit headers, an endless body. Each ends in the caller's shape,
never a 500 and never a silent clean end.

Chat Completions relayed is covered for refused, reset, 5xx and 429 in test_chat_sdk.py; the rows
here complete the table. How soon a refusal or the header deadline is answered, and how fast a
big stream is relayed, are printed figures here; tests/soak/test_durations_soak.py holds them
to their bounds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.support.clock import Stopwatch, wait_until
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import (
    UPSTREAM_SECRET,
    GatewayProcess,
    Live,
    Tenant,
    gateway_env,
    settings_for,
    start_live,
    stop_live,
)
from tests.support.readers import sse_events
from tests.support.streams import PATHS, Wire, frames, in_band_error

HEADER_DEADLINE = 2.0
BODY_CAP = 1024 * 1024
LIMIT_HEADERS = {
    "retry-after": "7",
    "retry-after-ms": "6500",
    "x-ratelimit-limit-requests": "500",
    "x-ratelimit-remaining-requests": "0",
    "x-ratelimit-reset-requests": "6.5s",
    "x-ratelimit-remaining-tokens": "29000",
    "anthropic-ratelimit-requests-limit": "50",
    "anthropic-ratelimit-tokens-reset": "2026-01-01T00:00:00Z",
}


@dataclass(frozen=True)
class Case:
    """A client API calling a model whose provider speaks `wire`."""

    name: str
    path: str  # the client route, for a stream
    whole_path: str  # the same, not streamed
    body: dict[str, Any]
    wire: Wire
    shape: str  # the error shape of the client API

    def request(self, stream: bool) -> tuple[str, dict[str, Any]]:
        """(path, JSON body) of a call."""
        if self.shape == "gemini":
            return (self.path if stream else self.whole_path), self.body
        return self.path, {**self.body, "stream": stream}


MESSAGES = [{"role": "user", "content": "hello"}]
CASES = [
    Case(
        "responses",
        "/v1/responses",
        "/v1/responses",
        {"model": "gpt-5-4", "input": "hello", "store": False},
        "responses",
        "openai",
    ),
    Case(
        "messages",
        "/v1/messages",
        "/v1/messages",
        {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": MESSAGES},
        "messages",
        "anthropic",
    ),
    Case(
        "gemini",
        "/v1beta/models/gemini-2-5-flash:streamGenerateContent?alt=sse",
        "/v1beta/models/gemini-2-5-flash:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]},
        "gemini",
        "gemini",
    ),
    Case(
        "chat translated to anthropic",
        "/v1/chat/completions",
        "/v1/chat/completions",
        {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": MESSAGES},
        "messages",
        "openai",
    ),
]
CHAT = Case(
    "chat",
    "/v1/chat/completions",
    "/v1/chat/completions",
    {"model": "gpt-5-4", "messages": MESSAGES},
    "chat",
    "openai",
)
ids = [c.name for c in CASES]


async def start_faults_gateway(fake: FakeUpstream) -> Live:
    """An in-process gateway with this module's header deadline and body cap."""
    env = gateway_env("memory://", fake.url, EDGE_UPSTREAM_TIMEOUT=str(HEADER_DEADLINE))
    return await start_live(settings_for(env).with_overrides(upstream_body_limit=BODY_CAP))


@pytest.fixture
async def live(fake: FakeUpstream) -> AsyncIterator[Live]:
    gateway = await start_faults_gateway(fake)
    yield gateway
    await stop_live(gateway)


@pytest.fixture
async def tenant(live: Live) -> Tenant:
    return await live.tenant()


async def call(
    live: Live, tenant: Tenant, case: Case, stream: bool
) -> tuple[int, dict[str, str], bytes]:
    assert live.http is not None
    path, body = case.request(stream)
    async with live.http.post(
        f"{live.url}{path}", json=body, headers={"Authorization": f"Bearer {tenant.key}"}
    ) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def error_message(shape: str, raw: bytes) -> str:
    """The message of an error body in the client API's shape (asserting the shape)."""
    body = orjson.loads(raw)
    if shape == "anthropic":
        assert body["type"] == "error"
    if shape == "gemini":
        assert isinstance(body["error"]["code"], int) and body["error"]["status"]
    return str(body["error"]["message"])


def stream_error(case: Case, raw: bytes) -> str:
    """The message of the error event a stream ended with (asserting it is the API's own)."""
    events = sse_events(raw)
    assert events, raw
    name, data = events[-1]
    if case.shape == "anthropic":
        assert name == "error", events[-3:]
        return str(orjson.loads(data)["error"]["message"])
    body = orjson.loads(data)
    if case.path == "/v1/responses":
        assert body["type"] == "response.failed", events[-3:]
        errors = [orjson.loads(d) for _, d in events if orjson.loads(d).get("type") == "error"]
        assert errors, events[-3:]
        return str(body["response"]["error"]["message"])
    assert "error" in body, events[-3:]
    return str(body["error"]["message"])


async def refused(live: Live, tenant: Tenant, fake: FakeUpstream, case: Case) -> list[float]:
    """With nothing listening at the provider's port, whole and streamed calls are a 502 in
    the caller's shape; how long each took (figures)."""
    await fake.stop()
    timings = []
    for stream in (False, True):
        took = Stopwatch()
        status, _, raw = await call(live, tenant, case, stream)
        timings.append(took.elapsed())
        assert status == 502, raw
        assert "could not be reached" in error_message(case.shape, raw)
    return timings


@pytest.mark.parametrize("case", CASES, ids=ids)
async def test_refused_is_502(live: Live, tenant: Tenant, fake: FakeUpstream, case: Case) -> None:
    timings = await refused(live, tenant, fake, case)
    print("502 after " + ", ".join(f"{t * 1000:.0f}" for t in timings) + " ms")


async def no_headers_in_time(live: Live, tenant: Tenant, fake: FakeUpstream) -> list[float]:
    """The provider would answer (a 200) only after three header deadlines: every API, whole
    and streamed, answers 504 in its shape instead, so the deadline cut it. How long each call
    took (figures)."""
    slow = Scenario(body=b"{}", delay_headers=HEADER_DEADLINE * 3)
    for path in [*PATHS.values(), PATHS["gemini"].replace("streamG", "g")]:
        fake.by_path[path] = slow

    async def timed(case: Case, stream: bool) -> tuple[Case, int, float, bytes]:
        took = Stopwatch()
        status, _, raw = await call(live, tenant, case, stream)
        return case, status, took.elapsed(), raw

    results = await asyncio.gather(
        *(timed(case, stream) for case in [CHAT, *CASES] for stream in (False, True))
    )
    for case, status, _, raw in results:
        assert status == 504, (case.name, raw)
        assert "did not answer in time" in error_message(case.shape, raw)
    return sorted(elapsed for _, _, elapsed, _ in results)


async def test_no_headers_in_time_is_504_at_the_deadline(
    live: Live, tenant: Tenant, fake: FakeUpstream
) -> None:
    times = await no_headers_in_time(live, tenant, fake)
    print(f"504 after {times[0]:.3f}-{times[-1]:.3f} s for a {HEADER_DEADLINE} s deadline")


@pytest.mark.parametrize("case", CASES, ids=ids)
async def test_reset_mid_stream_ends_with_the_apis_error_event(
    live: Live, tenant: Tenant, fake: FakeUpstream, case: Case
) -> None:
    fake.push(Scenario(frames=frames(case.wire, 30), reset_after=6))
    status, _, raw = await call(live, tenant, case, True)
    assert status == 200
    assert "interrupted" in stream_error(case, raw)


@pytest.mark.parametrize("case", [CHAT, *CASES], ids=["chat", *ids])
async def test_in_band_error_event_reaches_the_client_as_an_error(
    live: Live, tenant: Tenant, fake: FakeUpstream, case: Case
) -> None:
    head = frames(case.wire, 30)[:6]
    fake.push(Scenario(frames=[*head, in_band_error(case.wire)]))
    status, _, raw = await call(live, tenant, case, True)
    assert status == 200
    assert stream_error(case, raw)


SECRET_BODY = orjson.dumps(
    {
        "error": {
            "message": f"internal failure at 10.2.3.4:8443 (https://internal.example/x) "
            f"with key {UPSTREAM_SECRET} for org-abcdefgh12",
            "type": "server_error",
        }
    }
)


@pytest.mark.parametrize("case", CASES, ids=ids)
async def test_5xx_is_502_without_upstream_secrets(
    live: Live, tenant: Tenant, fake: FakeUpstream, case: Case
) -> None:
    for stream in (False, True):
        fake.push(Scenario(status=503, body=SECRET_BODY, headers={"x-internal-host": "10.2.3.4"}))
        status, headers, raw = await call(live, tenant, case, stream)
        assert status == 502, raw
        error_message(case.shape, raw)
        shown = raw.decode() + repr(headers)
        for secret in ("10.2.3.4", "internal.example", UPSTREAM_SECRET, "sk-", "org-abcdefgh12"):
            assert secret not in shown, (case.name, secret)


@pytest.mark.parametrize("case", CASES, ids=ids)
async def test_429_keeps_every_rate_limit_header_byte_identical(
    live: Live, tenant: Tenant, fake: FakeUpstream, case: Case
) -> None:
    body = (
        b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'
    )
    for stream in (False, True):
        fake.push(Scenario(status=429, body=body, headers=LIMIT_HEADERS))
        status, headers, raw = await call(live, tenant, case, stream)
        assert status == 429, raw
        lowered = {k.lower(): v for k, v in headers.items()}
        for name, value in LIMIT_HEADERS.items():
            assert lowered.get(name) == value, (case.name, name, lowered.get(name))


def big_delta(wire: Wire) -> tuple[list[bytes], bytes]:
    """A stream's opening events, and one large content event to repeat for ever."""
    events = frames(wire, 1)
    index = {"chat": 1, "responses": 4, "messages": 3, "gemini": 0}[wire]
    text = b'"' + b"lorem " * 2000 + b'"'
    return events[:index], events[index].replace(b'"lorem "', text)


@pytest.mark.parametrize("case", [CHAT, *CASES], ids=["chat", *ids])
async def test_endless_body_is_cut_at_the_size_cap(
    live: Live, tenant: Tenant, fake: FakeUpstream, case: Case
) -> None:
    head, delta = big_delta(case.wire)
    fake.push(Scenario(frames=head, endless=True, endless_frame=delta))
    status, _, raw = await call(live, tenant, case, True)
    assert status == 200
    assert "size limit" in stream_error(case, raw)
    assert len(raw) <= BODY_CAP + 2 * len(delta) + 4096
    fake.push(
        Scenario(
            frames=[b'{"a": "'],
            endless=True,
            endless_frame=b"x" * 16384,
            content_type="application/json",
        )
    )
    status, _, raw = await call(live, tenant, case, False)
    assert status == 502
    assert "size limit" in error_message(case.shape, raw)
    await wait_until(
        lambda: fake.open_streams == 0, "the endless provider answer was never closed", poll=0.01
    )


async def test_client_errors_never_answer_500(live: Live, tenant: Tenant) -> None:
    """Sanity for the table above: a wrong call is a 4xx in the right shape, not a 500."""
    assert live.http is not None
    for case in [CHAT, *CASES]:
        path, _ = case.request(False)
        async with live.http.post(
            f"{live.url}{path}",
            data=b"{not json",
            headers={"Authorization": f"Bearer {tenant.key}", "Content-Type": "application/json"},
        ) as resp:
            assert resp.status == 400
            error_message(case.shape, await resp.read())


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


@dataclass
class EndlessBodies:
    """Figures of three 64 MiB answers cut at the cap by `edge serve`: resident memory added
    at the peak (MiB) by a stream and by a whole answer, its drift over one more whole answer,
    and seconds taken (the stream alone, and all three: printed; the stream's relay speed is
    held to a bound by tests/soak/test_durations_soak.py)."""

    streamed: float
    whole: float
    drift: float
    streamed_in: float
    elapsed: float


async def endless_bodies(fake: FakeUpstream) -> EndlessBodies:
    """Against the real 64 MiB cap in a separate process: an endless stream, then two endless
    whole answers, each cut at the cap."""
    proc = GatewayProcess(gateway_env("memory://", fake.url)).start()
    try:
        async with aiohttp.ClientSession() as http:
            tenant = await Live(url=proc.url, http=http).tenant()
            assert proc.proc is not None
            pid = proc.proc.pid
            head, delta = big_delta("chat")
            for stream in (True, False):  # one of each first: the code paths are warm
                fake.push(Scenario(frames=[*head, *[delta] * 10, b"data: [DONE]\n\n"]))
                await call(Live(url=proc.url, http=http), tenant, CHAT, stream)
            before = _memory_kib(pid, "VmRSS")
            took = Stopwatch()
            fake.push(Scenario(frames=head, endless=True, endless_frame=delta))
            status, _, raw = await call(Live(url=proc.url, http=http), tenant, CHAT, True)
            assert status == 200 and "size limit" in stream_error(CHAT, raw)
            assert len(raw) > 60 * 1024 * 1024  # relayed up to the cap, then cut
            stream_peak = _memory_kib(pid, "VmHWM")
            streamed_in = took.elapsed()
            rss = []
            for _ in range(2):
                fake.push(Scenario(frames=[b'{"a": "'], endless=True, endless_frame=b"x" * 65536))
                fake.queue[-1].content_type = "application/json"
                status, _, raw = await call(Live(url=proc.url, http=http), tenant, CHAT, False)
                assert status == 502 and "size limit" in error_message("openai", raw)
                rss.append(_memory_kib(pid, "VmRSS"))
            whole_peak = _memory_kib(pid, "VmHWM")
            elapsed = took.elapsed()
    finally:
        proc.stop()
    streamed, whole = ((v - before) / 1024 for v in (stream_peak, whole_peak))
    return EndlessBodies(streamed, whole, (rss[-1] - rss[0]) / 1024, streamed_in, elapsed)


async def test_endless_body_keeps_memory_flat(fake: FakeUpstream) -> None:
    """A stream's RSS does not move; a whole answer's peaks at the cap, and repeating it adds
    nothing."""
    run = await endless_bodies(fake)
    print(
        f"3 x 64 MiB cut in {run.elapsed:.1f} s (the stream in {run.streamed_in:.1f} s); RSS "
        f"peak {run.streamed:+.1f} MiB streamed, {run.whole:+.1f} MiB whole; "
        f"{run.drift:+.1f} MiB over one more whole one"
    )
    assert run.streamed <= 16, run.streamed  # a stream holds one event at a time
    # A whole answer is relayed only once complete, so it is held until it passes the cap;
    # that memory is reused by the next one, not added to.
    assert run.whole <= 64 + 16, run.whole
    assert run.drift <= 8, run.drift

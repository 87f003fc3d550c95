"""SIGTERM on a real `edge serve`: not ready at once, serving through the grace period, then
refusing new work, finishing open streams, and ending the rest with `server_shutdown`."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from dataclasses import dataclass

import aiohttp
import orjson
import pytest

from tests.support.clock import Stopwatch, wait_until
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import GatewayProcess, Live, gateway_env

GRACE = 0.6
TIMEOUT = 2.5
CHUNK = (
    b'data: {"id":"c1","object":"chat.completion.chunk",'
    b'"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
)
DONE = b"data: [DONE]\n\n"


def chat_body(stream: bool = True) -> dict[str, object]:
    """A Chat Completions request to the OpenAI model behind the fake upstream."""
    return {"model": "gpt-5-4", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


async def read_stream(
    http: aiohttp.ClientSession, url: str, key: str, started: asyncio.Queue[int]
) -> bytes:
    """Run one stream to its end; report once its first bytes arrived."""
    async with http.post(
        f"{url}/v1/chat/completions",
        json=chat_body(),
        headers={"Authorization": f"Bearer {key}"},
    ) as resp:
        assert resp.status == 200, await resp.text()
        first = await resp.content.readany()
        started.put_nowait(1)
        return first + await resp.read()


def last_event(raw: bytes) -> bytes:
    """The last SSE event of a body."""
    events = [e for e in raw.split(b"\n\n") if e.strip()]
    return events[-1] + b"\n\n" if events else b""


def is_shutdown_event(event: bytes) -> bool:
    """A chat stream's terminal error chunk with code server_shutdown."""
    if not event.startswith(b"data: {"):
        return False
    body = orjson.loads(event.removeprefix(b"data: "))
    return body.get("error", {}).get("code") == "server_shutdown"


async def poll_status(http: aiohttp.ClientSession, url: str, want: int, within: float) -> None:
    """Poll a URL until it answers `want`; give up after `within` seconds (a bound on the
    test's own run time)."""

    async def answers() -> bool:
        async with http.get(url) as resp:
            return resp.status == want

    await wait_until(answers, f"{url} never answered {want}", seconds=within)


def shutdown_gateway(fake: FakeUpstream) -> GatewayProcess:
    """A started `edge serve` with this module's grace and shutdown timeout."""
    env = gateway_env(
        "memory://",
        fake.url,
        EDGE_SHUTDOWN_GRACE=str(GRACE),
        EDGE_SHUTDOWN_TIMEOUT=str(TIMEOUT),
        EDGE_LOG_LEVEL="INFO",
    )
    return GatewayProcess(env).start()


@pytest.fixture
async def proc(fake: FakeUpstream):
    gw = shutdown_gateway(fake)
    yield gw
    gw.kill()


@dataclass
class Drain:
    """What SIGTERM during twenty streams came to: each stream's body, the exit code, and
    when readiness turned 503 and the process exited, in seconds after the signal (figures:
    tests/soak/test_durations_soak.py holds them to the grace and the shutdown timeout)."""

    bodies: list[bytes]
    code: int
    ready_off: float
    exited: float


async def sigterm_during_twenty_streams(proc: GatewayProcess, fake: FakeUpstream) -> Drain:
    """Twenty streams, half of which would never end; SIGTERM; readiness turns 503 while a new
    call is still served within the grace; every stream ends and the process exits."""
    async with aiohttp.ClientSession() as http:
        live = Live(url=proc.url, http=http)
        tenant = await live.tenant()
        finishing = Scenario(frames=[CHUNK] * 12 + [DONE], delay_chunks=0.1)
        endless = Scenario(endless=True, delay_chunks=0.05)
        for i in range(20):
            fake.push(finishing if i % 2 == 0 else endless)
        started: asyncio.Queue[int] = asyncio.Queue()
        streams = [
            asyncio.ensure_future(read_stream(http, proc.url, tenant.key, started))
            for _ in range(20)
        ]
        for _ in range(20):
            async with asyncio.timeout(10):
                await started.get()
        signalled = Stopwatch()
        proc.signal(signal.SIGTERM)
        await poll_status(http, f"{proc.url}/readyz", 503, within=10)
        ready_off = signalled.elapsed()
        # Readiness went first: after it, within the grace period, new work is still served
        # (endpoint removal races the signal).
        async with http.post(
            f"{proc.url}/v1/chat/completions",
            json={**chat_body(stream=False), "model": "local/echo"},
            headers={"Authorization": f"Bearer {tenant.key}"},
        ) as resp:
            assert resp.status == 200
        # Bounds on the test's own run time, with room above the grace and shutdown timeout.
        bodies = await asyncio.wait_for(asyncio.gather(*streams), GRACE + TIMEOUT + 30)
        assert proc.proc is not None
        code = await asyncio.to_thread(proc.proc.wait, GRACE + TIMEOUT + 30)
        return Drain(list(bodies), code, ready_off, signalled.elapsed())


async def test_sigterm_during_twenty_streams(proc: GatewayProcess, fake: FakeUpstream) -> None:
    """Ten streams finish normally during the drain; ten endless ones get `server_shutdown`."""
    drain = await sigterm_during_twenty_streams(proc, fake)
    assert drain.code == 0
    bodies = drain.bodies
    ends = [last_event(b) for b in bodies]
    normal = [e for e in ends if e == DONE]
    cut = [e for e in ends if is_shutdown_event(e)]
    assert len(normal) + len(cut) == 20, ends  # none ends silently
    assert len(normal) == 10 and len(cut) == 10
    log = proc.log.read_text()
    for line in ("draining", "refusing new requests", "shutdown deadline reached", "stopped"):
        assert f'"msg":"{line}"' in log
    print(
        f"readiness off {drain.ready_off * 1000:.0f} ms after SIGTERM, exit after "
        f"{drain.exited:.2f} s (grace {GRACE} s, timeout {TIMEOUT} s)"
    )


async def test_new_requests_are_refused_after_the_grace(proc: GatewayProcess, fake) -> None:
    """Past the grace period a new call gets 503 `server_shutdown` in its API's shape, while
    probes still answer; the process exits 0 once its one open stream is done."""
    async with aiohttp.ClientSession() as http:
        tenant = await Live(url=proc.url, http=http).tenant()
        fake.push(Scenario(frames=[CHUNK] * 40 + [DONE], delay_chunks=0.05))
        started: asyncio.Queue[int] = asyncio.Queue()
        stream = asyncio.ensure_future(read_stream(http, proc.url, tenant.key, started))
        await asyncio.wait_for(started.get(), 10)
        proc.signal(signal.SIGTERM)
        await asyncio.sleep(GRACE + 0.3)
        async with http.post(
            f"{proc.url}/v1/messages",
            json={"model": "local/echo", "max_tokens": 5, "messages": []},
            headers={"x-api-key": tenant.key},
        ) as resp:
            assert resp.status == 503
            assert resp.headers["Retry-After"] == "1"
            body = await resp.json()
        assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
        async with http.get(f"{proc.url}/healthz") as resp:
            assert resp.status == 200
        assert last_event(await stream) == DONE
        assert proc.proc is not None
        assert await asyncio.to_thread(proc.proc.wait, TIMEOUT + 5) == 0


def test_unreachable_redis_fails_fast_with_a_message(tmp_path) -> None:
    """A store that never answers: bounded retries, then exit 3 and a message naming it."""
    from tests.support.ports import free_port

    port = free_port()  # nothing listens there
    env = gateway_env(
        f"redis://:hunter2-password@127.0.0.1:{port}/0", None, EDGE_STORE_STARTUP_TIMEOUT="1"
    )
    gw = GatewayProcess(env)
    took = Stopwatch()
    # The timeout bounds the test's own run time: a gateway retrying for ever would meet it.
    run = subprocess.run(
        [*_edge(), "serve", "--port", str(gw.port)],
        env=gw.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 3
    print(f"exited 3 after {took.elapsed():.1f} s (startup timeout 1 s)")
    assert f"127.0.0.1:{port}" in run.stderr and "did not answer" in run.stderr
    assert "hunter2" not in run.stderr + run.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"EDGE_CONFIG": "/nonexistent/edge.toml"}, "EDGE_CONFIG: no such file"),
        ({"EDGE_HMAC_SECRET": ""}, "EDGE_HMAC_SECRET is required"),
        ({"EDGE_SHUTDOWN_TIMEOUT": "soon"}, "EDGE_SHUTDOWN_TIMEOUT"),
    ],
)
def test_bad_configuration_fails_fast(extra: dict[str, str], message: str, tmp_path) -> None:
    """A bad config file or a missing secret: exit 2 with a message saying what to fix."""
    env = gateway_env("redis://127.0.0.1:1/0", None, **extra)
    gw = GatewayProcess(env)
    run = subprocess.run(
        [*_edge(), "serve", "--port", str(gw.port)],
        env=gw.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert message in run.stderr


def test_bad_toml_names_the_file(tmp_path) -> None:
    """Invalid TOML: the message names the file and the parse error."""
    bad = tmp_path / "edge.toml"
    bad.write_text("[catalog\n")
    env = gateway_env("memory://", None, EDGE_CONFIG=str(bad))
    gw = GatewayProcess(env)
    run = subprocess.run(
        [*_edge(), "serve", "--port", str(gw.port)],
        env=gw.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2
    assert str(bad) in run.stderr and "invalid TOML" in run.stderr


def _edge() -> list[str]:
    import sys

    return [sys.executable, "-m", "edge"]

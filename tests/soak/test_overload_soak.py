"""Overload at twice capacity, open loop: the excess is shed early with 503 and Retry-After, the
admitted requests keep their p99, memory stays under a cap and the process survives.

Capacity is what the gateway admits at once (EDGE_MAX_INFLIGHT) over the provider's latency,
measured first in a closed loop; a fifth of the requests carry 256 KiB bodies, so memory grows
with whatever is admitted. (The mechanism itself is in make test: tests/test_overload.py.)"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest

from tests.bench.httpclient import Exchange, build_request
from tests.bench.loadgen import Outcome, closed_loop, open_loop
from tests.soak.conftest import peak_rss_mib, percentile, rss_mib
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import GatewayProcess, Live, gateway_env

pytestmark = [pytest.mark.soak, pytest.mark.timeout(300)]
MAX_INFLIGHT = 40
PROVIDER_LATENCY = 0.2
OVERLOAD_SECONDS = 30.0
MEMORY_CAP_MIB = 256
ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-5.4",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1},
    }
)


def _body(pad: int) -> bytes:
    return orjson.dumps(
        {"model": "gpt-5-4", "messages": [{"role": "user", "content": "x" * pad or "x"}]}
    )


def answered(ex: Exchange) -> bool:
    """Admitted or shed: both are answers; anything else is a failure."""
    return ex.status in (200, 503)


async def test_twice_capacity_open_loop(fake: FakeUpstream) -> None:
    fake.default = Scenario(body=ANSWER, delay_headers=PROVIDER_LATENCY)
    env = gateway_env("memory://", fake.url, EDGE_MAX_INFLIGHT=str(MAX_INFLIGHT))
    proc = GatewayProcess(env).start()
    assert proc.proc is not None
    pid = proc.proc.pid
    try:
        async with aiohttp.ClientSession() as http:
            tenant = await Live(url=proc.url, http=http).tenant()
            auth = {"Authorization": f"Bearer {tenant.key}", "Content-Type": "application/json"}
            small = build_request("127.0.0.1", proc.port, "/v1/chat/completions", auth, _body(0))
            large = build_request(
                "127.0.0.1", proc.port, "/v1/chat/completions", auth, _body(256 * 1024)
            )
            # Capacity: as many clients as are admitted at once, each calling back to back.
            base = await closed_loop("127.0.0.1", proc.port, small, MAX_INFLIGHT, 8.0)
            assert base.errors == 0, base.error_samples
            capacity = len(base.exchanges) / base.elapsed
            base_p99 = percentile([e.latency for e in base.exchanges], 0.99)
            rss_before = rss_mib(pid)

            probes: list[tuple[int, str | None]] = []

            async def probe() -> None:
                # Retry-After, and the caller's shape, on what is shed.
                deadline = time.monotonic() + OVERLOAD_SECONDS - 2
                while time.monotonic() < deadline:
                    async with http.post(
                        f"{proc.url}/v1/chat/completions", data=_body(0), headers=auth
                    ) as resp:
                        body = await resp.json()
                        probes.append((resp.status, resp.headers.get("Retry-After")))
                        if resp.status == 503:
                            assert body["error"]["code"] == "overloaded"
                    await asyncio.sleep(0.2)

            runs: list[Outcome] = await asyncio.gather(
                open_loop(
                    "127.0.0.1", proc.port, small, capacity * 1.6, OVERLOAD_SECONDS, answered
                ),
                open_loop(
                    "127.0.0.1", proc.port, large, capacity * 0.4, OVERLOAD_SECONDS, answered
                ),
                probe(),
            )
            peak = peak_rss_mib(pid)
            async with http.get(f"{proc.url}/healthz") as resp:
                assert resp.status == 200
    finally:
        code = proc.stop()
    exchanges = [e for run in runs[:2] for e in run.exchanges]
    admitted = [e.latency for e in exchanges if e.status == 200]
    shed = [e.latency for e in exchanges if e.status == 503]
    offered = sum(len(run.exchanges) + run.errors for run in runs[:2])
    late = sum(run.late for run in runs[:2])
    admitted_p99 = percentile(admitted, 0.99)
    print(
        f"capacity {capacity:.0f}/s (p99 {base_p99 * 1000:.0f} ms); at 2x: {offered} sent "
        f"({late} late), {len(admitted)} admitted ({len(admitted) / OVERLOAD_SECONDS:.0f}/s, "
        f"p99 {admitted_p99 * 1000:.0f} ms), {len(shed)} shed (p99 "
        f"{percentile(shed, 0.99) * 1000:.1f} ms); RSS {rss_before:.0f} MiB before, "
        f"peak {peak:.0f} MiB"
    )
    assert sum(run.errors for run in runs[:2]) == 0, [run.error_samples for run in runs[:2]]
    assert len(shed) >= offered * 0.3  # the excess is shed...
    assert percentile(shed, 0.99) <= 0.05  # ...early
    assert {s for s, _ in probes} <= {200, 503}
    assert all(retry == "1" for status, retry in probes if status == 503)
    assert admitted_p99 <= base_p99 * 1.2 + 0.02
    assert len(admitted) / OVERLOAD_SECONDS >= capacity * 0.8  # capacity is kept, not lost
    assert peak <= MEMORY_CAP_MIB
    assert code == 0  # alive to the end: no OOM

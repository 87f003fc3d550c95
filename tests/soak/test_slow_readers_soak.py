"""Slow readers among normal streams, with the production write timeout (30 s): a tenth of the
clients read 1 KiB/s from providers sending ten times that; what the gateway holds for each stays
under 1 MiB, the other streams' p99 inter-chunk interval rises by at most 20%, and a client that
stops reading altogether is dropped by the write timeout with its provider call closed within a
second. (The same with a 1 s timeout runs in make test: tests/test_slow_readers.py.)

Buffers at the ends are kept small (the provider's SO_SNDBUF, the clients' SO_RCVBUF), as a
remote provider's and a remote client's would be, so what piles up between is the gateway's."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import orjson
import pytest

from tests.soak.conftest import StackFactory, percentile, upstream_stats
from tests.support.stream_client import StreamResult, request, stream

pytestmark = [pytest.mark.soak, pytest.mark.timeout(600)]
NORMAL = 180
SLOW = 20  # a tenth of the clients
RATE = 1024  # bytes a second
WRITE_TIMEOUT = 30.0
PROVIDER_SNDBUF = 64 * 1024
CLIENT_RCVBUF = 8 * 1024
# What the two ends may hold: kernel buffers (doubled by Linux) and the provider's transport.
ENDS = 2 * PROVIDER_SNDBUF + 64 * 1024 + 2 * CLIENT_RCVBUF
BOUND = 1024 * 1024
BASELINE_SECONDS = 30.0
LOADED_SECONDS = 60.0


def intervals(results: list[StreamResult]) -> list[float]:
    """Received inter-chunk intervals (cadence 50 ms plus whatever was added)."""
    return [0.05 + g for r in results for g in r.gaps]


async def normal_load(
    port: int, key: str, seconds: float, ids: itertools.count[int]
) -> list[StreamResult]:
    """NORMAL clients running 20-delta streams back to back."""
    results: list[StreamResult] = []
    deadline = time.monotonic() + seconds

    async def client(n: int) -> None:
        await asyncio.sleep(n * 0.2 / NORMAL)
        while time.monotonic() < deadline:
            ident = next(ids)
            results.append(await stream(port, request(ident, 20, 50, key), ident, timeout=60))

    await asyncio.gather(*(client(n) for n in range(NORMAL)))
    return results


async def test_slow_readers_and_a_stalled_one(soak_stack: StackFactory) -> None:
    stack = await soak_stack(sndbuf=PROVIDER_SNDBUF, EDGE_STREAM_WRITE_TIMEOUT=str(WRITE_TIMEOUT))
    port, key = stack.gateway.port, stack.key
    ids = itertools.count(1)
    baseline = await normal_load(port, key, BASELINE_SECONDS, ids)

    # Slow streams: endless, about 10 KiB/s from the provider, read at 1 KiB/s.
    slow = [StreamResult(100_000 + n) for n in range(SLOW)]
    slow_tasks = [
        asyncio.create_task(
            stream(
                port, request(r.ident, 0, 20, key, pad=150), r.ident, 3600, RATE, CLIENT_RCVBUF, r
            )
        )
        for r in slow
    ]
    stalled = StreamResult(200_000)
    stalled_task = asyncio.create_task(
        stream(
            port,
            request(stalled.ident, 0, 5, key, pad=150),
            stalled.ident,
            3600,
            0,
            CLIENT_RCVBUF,
            stalled,
        )
    )
    stalled_at = time.monotonic()
    held_max = 0

    async def watch() -> None:
        nonlocal held_max
        while True:
            await asyncio.sleep(5)
            sent = (await upstream_stats(stack.upstream_port))["sent"]
            for r in slow:
                held = sent.get(str(r.ident), 0) - r.received - ENDS
                held_max = max(held_max, held)

    watcher = asyncio.create_task(watch())
    loaded = await normal_load(port, key, LOADED_SECONDS, ids)
    watcher.cancel()
    stats = await upstream_stats(stack.upstream_port)
    for task in slow_tasks:
        task.cancel()
    await asyncio.gather(*slow_tasks, return_exceptions=True)
    stalled_task.cancel()
    await asyncio.gather(stalled_task, return_exceptions=True)

    base_p99 = percentile(intervals(baseline), 0.99)
    loaded_p99 = percentile(intervals(loaded), 0.99)
    rise = loaded_p99 / base_p99 - 1
    # The stalled stream: dropped once the write timeout passed (the gateway logged it), and
    # its provider call closed within a second of that.
    offset = time.time() - time.monotonic()
    drops = [
        orjson.loads(line)
        for line in Path(stack.gateway.log).read_text().splitlines()
        if '"client stopped reading' in line
    ]
    cut = stats["cut"].get(str(stalled.ident))
    print(
        f"p99 interval {base_p99 * 1000:.1f} ms alone, {loaded_p99 * 1000:.1f} ms with slow "
        f"readers ({rise:+.1%}); at most {held_max / 1024:.0f} KiB held for a slow stream; "
        f"slow readers read {sum(r.received for r in slow) / SLOW / LOADED_SECONDS:.0f} B/s; "
        f"stalled stream dropped {drops[0]['ts'] - offset - stalled_at:.1f} s after it stalled, "
        f"provider call closed {cut - (drops[0]['ts'] - offset):.3f} s later"
        if drops and cut
        else f"stalled stream: drops {drops}, cut {cut}"
    )
    for results in (baseline, loaded):
        failed = [r for r in results if r.errors or not r.complete]
        assert not failed, [r.errors for r in failed[:5]]
    assert all(not r.errors for r in slow), [r.errors for r in slow if r.errors]
    assert min(r.received for r in slow) > RATE * LOADED_SECONDS * 0.5  # they kept reading
    assert held_max <= BOUND, held_max
    assert rise <= 0.20, rise
    assert len(drops) == 1 and cut is not None
    dropped_at = drops[0]["ts"] - offset
    assert WRITE_TIMEOUT <= dropped_at - stalled_at <= WRITE_TIMEOUT * 1.25 + 5
    assert 0 <= cut - dropped_at < 1.0

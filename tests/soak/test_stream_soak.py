"""Streams for two minutes at 70% of the saturation point measured first on this machine: every
stream complete, no delta lost, doubled or crossed between streams, the added p99 inter-chunk
delay within 50 ms, RSS stable after warm-up, and descriptors and provider connections back to
their baseline within 10 s of the end.

Saturation: the stream count, rising by a quarter every 6 s, at which the added p99 inter-chunk
delay first passes 50 ms or a stream fails (each stream: 20 deltas 50 ms apart, relayed); the
lower of two ramps."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.soak.conftest import (
    Stack,
    StackFactory,
    open_fds,
    percentile,
    rss_mib,
    sockets_to,
    upstream_stats,
)
from tests.support.stream_client import StreamResult, request, stream

pytestmark = [pytest.mark.soak, pytest.mark.timeout(900)]
CHUNKS = 20
DELAY_MS = 50
ADDED_P99 = 0.050
STEP_SECONDS = 6.0
SOAK_SECONDS = float(os.environ.get("EDGE_SOAK_SECONDS", "120"))
STEPS = tuple(round(100 * 1.25**n) for n in range(16))  # 100 ... 2800
WARM_UP = 30.0


@dataclass
class Load:
    """What one constant-concurrency run saw."""

    streams: int
    results: list[StreamResult]
    seconds: float

    @property
    def gaps(self) -> list[float]:
        return [g for r in self.results for g in r.gaps]

    @property
    def failed(self) -> list[StreamResult]:
        return [r for r in self.results if r.errors or not r.complete or r.deltas != CHUNKS]

    @property
    def deltas_per_second(self) -> float:
        return sum(r.deltas for r in self.results) / self.seconds

    def summary(self) -> str:
        return (
            f"{self.streams} streams: {len(self.results)} done, {len(self.failed)} failed, "
            f"{self.deltas_per_second:.0f} deltas/s, added inter-chunk delay "
            f"p50 {percentile(self.gaps, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(self.gaps, 0.99) * 1000:.1f} ms"
        )


async def run_load(stack: Stack, streams: int, seconds: float, ids: Iterator[int]) -> Load:
    """`streams` clients, each running marked streams back to back for `seconds`."""
    results: list[StreamResult] = []
    started = time.monotonic()
    deadline = started + seconds

    async def client() -> None:
        await asyncio.sleep(random.uniform(0, DELAY_MS / 1000 * 4))  # not all in step
        while time.monotonic() < deadline:
            ident = next(ids)
            raw = request(ident, CHUNKS, DELAY_MS, stack.key)
            results.append(await stream(stack.gateway.port, raw, ident, timeout=60))

    await asyncio.gather(*(client() for _ in range(streams)))
    return Load(streams, results, time.monotonic() - started)


async def test_stream_soak_at_70_percent_of_saturation(soak_stack: StackFactory) -> None:
    stack = await soak_stack()
    ids = itertools.count()
    # Redis pool connections stay open by design (up to the pool's 256): counted apart.
    baseline_fds = open_fds(stack.pid) - sockets_to(stack.pid, stack.redis.port)
    baseline_upstream = (await upstream_stats(stack.upstream_port))["open_connections"]

    # Two ramps, the lower result: near saturation one step's p99 is noisy, and 70% of an
    # overestimate would not be 70% at all.
    found = []
    for _ in range(2):
        for streams in STEPS:
            load = await run_load(stack, streams, STEP_SECONDS, ids)
            print("ramp:", load.summary())
            if load.failed or percentile(load.gaps, 0.99) > ADDED_P99:
                found.append(streams)
                break
        await asyncio.sleep(3)
    assert len(found) == 2, f"no saturation up to {STEPS[-1]} streams"
    saturation = min(found)
    soak = int(saturation * 0.7)
    # A pause, so the soak starts from an idle gateway.
    await asyncio.sleep(5)

    samples: list[tuple[float, float]] = []

    async def sample() -> None:
        start = time.monotonic()
        while True:
            samples.append((time.monotonic() - start, rss_mib(stack.pid)))
            await asyncio.sleep(2)

    sampler = asyncio.create_task(sample())
    load = await run_load(stack, soak, SOAK_SECONDS, ids)
    sampler.cancel()
    ended = time.monotonic()
    print(f"soak at 70% of {saturation}:", load.summary())

    # Back to baseline within 10 s of the end.
    while True:
        stats = await upstream_stats(stack.upstream_port)
        pooled = sockets_to(stack.pid, stack.redis.port)
        fds = open_fds(stack.pid) - pooled
        back = stats["open_connections"] <= baseline_upstream and fds <= baseline_fds
        if back or time.monotonic() - ended > 10:
            break
        await asyncio.sleep(0.25)
    settled = time.monotonic() - ended
    after_warm_up = [rss for at, rss in samples if at >= WARM_UP]
    growth = (after_warm_up[-1] - after_warm_up[0]) / after_warm_up[0]
    print(
        f"RSS {after_warm_up[0]:.1f} MiB after warm-up, {after_warm_up[-1]:.1f} MiB at the end "
        f"({growth:+.1%}); fds {baseline_fds} -> {fds} (and {pooled} pooled Redis "
        f"connections), provider connections {baseline_upstream} -> "
        f"{stats['open_connections']} {settled:.1f} s after the end"
    )
    assert not load.failed, [r.errors[:3] for r in load.failed[:5]]
    assert percentile(load.gaps, 0.99) <= ADDED_P99
    assert growth <= 0.10
    assert stats["open_streams"] == 0
    assert back, "descriptors or provider connections not back to baseline within 10 s"
    assert pooled <= 256

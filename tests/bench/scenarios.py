"""Running one scenario against one target (direct or through the gateway) into a Row."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tests.bench import procstat
from tests.bench.httpclient import build_request
from tests.bench.loadgen import (
    Outcome,
    closed_loop,
    hold_streams,
    open_loop,
    rotating_loop,
    stream_ended,
)
from tests.bench.redisstats import RedisWatch
from tests.bench.report import Row, percentile
from tests.bench.wrk import run_wrk

MB = 1024 * 1024


@dataclass(frozen=True)
class Target:
    """Where requests go and what they carry."""

    label: str
    port: int
    path: str
    headers: dict[str, str]
    body: bytes
    stream_body: bytes
    pids: Callable[[], list[int]] | None = None  # the processes whose CPU and RSS count
    host: str = "127.0.0.1"
    store: bool = False  # uses the Redis under watch: its commands and CPU count too

    @property
    def url(self) -> str:
        """Full URL of the endpoint."""
        return f"http://{self.host}:{self.port}{self.path}"

    def raw(self, stream: bool) -> bytes:
        """The request on the wire."""
        headers = {"Content-Type": "application/json", **self.headers}
        body = self.stream_body if stream else self.body
        return build_request(self.host, self.port, self.path, headers, body)


@dataclass
class Meter:
    """Gateway CPU, RSS and Redis counters around one run."""

    target: Target
    redis: RedisWatch | None
    pids: list[int] = field(default_factory=list)
    cpu0: float = 0.0

    def __post_init__(self) -> None:
        if self.target.pids is not None:
            self.pids = self.target.pids()
            self.cpu0 = procstat.cpu_seconds(self.pids)
        if not self.target.store:
            self.redis = None
        self.redis0 = self.redis.snapshot() if self.redis and self.pids else None
        self.redis_cpu0 = self.redis.cpu_seconds() if self.redis else 0.0

    def rss_mb(self) -> float:
        """Current RSS of the gateway processes."""
        return procstat.rss_bytes(self.pids) / MB

    def finish(self, row: Row, requests: int) -> Row:
        """Fill the gateway columns of `row` for `requests` requests."""
        if not self.pids:
            return row
        cpu = procstat.cpu_seconds(self.pids) - self.cpu0
        row.cpu_ms_per_req = cpu * 1000 / requests if requests else None
        row.rss_mb = self.rss_mb()
        if self.redis is not None and self.redis0 is not None and requests:
            diff = self.redis.snapshot().minus(self.redis0)
            row.redis_cmds_per_req = diff.total / requests
            row.redis_rtt_per_req = diff.reads / requests
            row.redis_commands = {k: v / requests for k, v in sorted(diff.commands.items())}
            if self.redis.pid:
                cpu = self.redis.cpu_seconds() - self.redis_cpu0
                row.redis_cpu_ms_per_req = cpu * 1000 / requests
        return row


def _from_outcome(scenario: str, target: Target, out: Outcome, ttfb: bool) -> Row:
    lat = [ex.latency * 1000 for ex in out.exchanges]
    row = Row(
        scenario,
        target.label,
        requests=len(out.exchanges),
        errors=out.errors,
        rps=len(out.exchanges) / out.elapsed if out.elapsed else 0.0,
        p50=percentile(lat, 50),
        p90=percentile(lat, 90),
        p99=percentile(lat, 99),
    )
    if ttfb:
        first = [ex.ttfb * 1000 for ex in out.exchanges]
        row.ttfb_p50, row.ttfb_p99 = percentile(first, 50), percentile(first, 99)
    if out.error_samples:
        row.extra["error_samples"] = out.error_samples
    if out.late:
        row.extra["late_sends"] = out.late
    return row


async def wrk_row(
    scenario: str, target: Target, redis: RedisWatch | None, connections: int, seconds: float
) -> Row:
    """Closed loop with wrk: throughput and latency of whole (non-streamed) answers."""
    meter = Meter(target, redis)
    res = await asyncio.to_thread(
        run_wrk, target.url, target.headers, target.body, connections, seconds
    )
    row = Row(
        scenario,
        target.label,
        requests=res.requests,
        errors=res.errors + res.non_2xx,
        rps=res.rps,
        p50=res.p50 * 1000,
        p90=res.p90 * 1000,
        p99=res.p99 * 1000,
    )
    return meter.finish(row, res.requests)


async def open_row(
    scenario: str, target: Target, redis: RedisWatch | None, rate: float, seconds: float
) -> Row:
    """Open loop: a fixed arrival rate, latency from each request's send."""
    meter = Meter(target, redis)
    out = await open_loop(target.host, target.port, target.raw(False), rate, seconds)
    return meter.finish(_from_outcome(scenario, target, out, ttfb=False), len(out.exchanges))


async def closed_row(
    scenario: str, target: Target, redis: RedisWatch | None, concurrency: int, seconds: float
) -> Row:
    """Closed loop of whole answers with the asyncio client (any body size, unlike wrk's)."""
    meter = Meter(target, redis)
    out = await closed_loop(target.host, target.port, target.raw(False), concurrency, seconds)
    return meter.finish(_from_outcome(scenario, target, out, ttfb=False), len(out.exchanges))


async def spread_row(
    scenario: str,
    target: Target,
    raws: Sequence[bytes],
    redis: RedisWatch | None,
    concurrency: int,
    seconds: float,
) -> Row:
    """Closed loop of whole answers, each request the next of `raws` (e.g. one per API key)."""
    meter = Meter(target, redis)
    out = await rotating_loop(target.host, target.port, raws, concurrency, seconds)
    return meter.finish(_from_outcome(scenario, target, out, ttfb=False), len(out.exchanges))


async def stream_row(
    scenario: str, target: Target, redis: RedisWatch | None, concurrency: int, seconds: float
) -> Row:
    """Closed loop of streams: time to first event and to the end."""
    meter = Meter(target, redis)
    out = await closed_loop(
        target.host, target.port, target.raw(True), concurrency, seconds, stream_ended
    )
    return meter.finish(_from_outcome(scenario, target, out, ttfb=True), len(out.exchanges))


async def hold_row(
    scenario: str, target: Target, redis: RedisWatch | None, count: int, hold: float
) -> Row:
    """`count` slow streams open at once for about `hold` seconds: memory per open stream."""
    meter = Meter(target, redis)
    base = meter.rss_mb() if meter.pids else 0.0
    peak = [base]

    def sample() -> None:
        if meter.pids:
            peak[0] = max(peak[0], meter.rss_mb())

    out = await hold_streams(target.host, target.port, target.raw(True), count, hold + 60, sample)
    row = meter.finish(_from_outcome(scenario, target, out, ttfb=True), len(out.exchanges))
    if meter.pids:
        row.extra["baseline_rss_mb"] = base
        row.extra["peak_rss_mb"] = peak[0]
        row.extra["kb_per_stream"] = (peak[0] - base) * 1024 / count
        row.rss_mb = peak[0]
    row.extra["open_streams"] = count
    return row


def unavailable(scenario: str, target: str, why: str) -> Row:
    """A row for a scenario this version of the gateway cannot run."""
    return Row(scenario, target, note=f"not available: {why}")

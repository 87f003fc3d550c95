"""The benchmark harness, run for a couple of seconds with tiny settings: it must still work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bench.httpclient import Connection, build_request
from tests.bench.loadgen import ok_status, stream_ended
from tests.bench.payloads import APIS
from tests.bench.redisstats import RedisWatch
from tests.bench.report import RELAY, compare, table, verdict_table, verdicts
from tests.bench.run import SCENARIOS
from tests.bench.scenarios import hold_row, open_row, stream_row, wrk_row
from tests.bench.stack import (
    FakeUpstreamProcess,
    Gateway,
    Service,
    provision,
    start_gateway,
    start_relay,
)
from tests.bench.systems import Scenarios, system_table
from tests.bench.targets import direct_target, gateway_target, relay_target
from tests.support.redis_server import RedisServer

PATHS = {"chat": "/v1/chat/completions", "responses": "/v1/responses", "messages": "/v1/messages"}


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstreamProcess]:
    proc = FakeUpstreamProcess().start()
    yield proc
    proc.stop()


@pytest.fixture
async def relay(upstream: FakeUpstreamProcess) -> AsyncIterator[Service]:
    proc = start_relay(upstream.url)
    yield proc
    proc.stop()


@pytest.fixture
async def gateway(
    redis_server: RedisServer, upstream: FakeUpstreamProcess, tmp_path: Path
) -> AsyncIterator[Gateway]:
    gw = start_gateway(redis_server.url, upstream.url, tmp_path / "gw.log", "WARNING")
    try:
        await provision(gw)
        yield gw
    finally:
        gw.process.stop()


@pytest.mark.parametrize("api", APIS)
async def test_fake_upstream_answers_each_api(upstream: FakeUpstreamProcess, api: str) -> None:
    await upstream.shape(body_bytes=2048, chunks=3, delay=0.001)
    conn = await Connection("127.0.0.1", upstream.port).open()
    try:
        for stream in (False, True):
            body = b'{"model":"m","stream":true}' if stream else b'{"model":"m"}'
            raw = build_request("127.0.0.1", upstream.port, PATHS[api], {}, body)
            ex = await conn.send(raw, timeout=5)
            assert stream_ended(ex) if stream else ok_status(ex)
            if not stream:
                assert 2000 <= ex.body_bytes <= 2100
    finally:
        conn.close()


async def test_scenarios_run_directly_through_the_relay_and_through_the_gateway(
    redis_server: RedisServer, upstream: FakeUpstreamProcess, relay: Service, gateway: Gateway
) -> None:
    watch = RedisWatch(redis_server.url)
    targets = (direct_target(upstream), relay_target(relay), gateway_target(gateway, "gateway"))
    names = {**SCENARIOS, "hold": "held"}
    try:
        rows = [await wrk_row(names["c50"], t, watch, 2, 1) for t in targets]
        rows += [await open_row(names["open50"], t, watch, 50, 0.3) for t in targets]
        await upstream.shape(chunks=3, delay=0.005)
        rows += [await stream_row(names["stream10"], t, watch, 2, 0.3) for t in targets]
        await upstream.shape(chunks=2, delay=0.05)
        rows += [await hold_row("held", t, watch, 5, 0.2) for t in targets]
    finally:
        watch.close()
    assert all(r.requests > 0 and r.errors == 0 for r in rows), rows
    compare(rows)
    through = [r for r in rows if r.target == "gateway"]
    assert all(r.cpu_ms_per_req is not None and r.rss_mb for r in through)
    assert all(r.redis_rtt_per_req and r.added_p50 is not None for r in through)
    assert through[2].ttfb_p50 is not None and through[3].extra["kb_per_stream"] is not None
    # The relay's rows are measured the same way, without the gateway's Redis.
    relayed = [r for r in rows if r.target == RELAY]
    assert all(r.cpu_ms_per_req is not None and r.redis_cmds_per_req is None for r in relayed)
    assert relayed[2].added_ttfb_p50 is not None
    assert "| closed c=50 | gateway |" in table(rows)
    checked = verdict_table(verdicts(rows, names))
    assert "added latency at 50 req/s" in checked and "of the bare relay" in checked
    scenarios = Scenarios(names["c50"], names["open50"], names["stream10"])
    shown = system_table(
        rows, scenarios, [("direct", "direct"), (RELAY, "relay"), ("gateway", "edge")]
    )
    assert "| relay |" in shown and "| edge |" in shown

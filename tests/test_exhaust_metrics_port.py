"""/metrics names tenants, so it is served on a port of its own (`edge serve --metrics-port`,
EDGE_METRICS_PORT, 9464 by default) with the probes, and not on the client port; `same` keeps
it on the client port. With `--workers N` every worker binds the metrics port too
(SO_REUSEPORT), and whichever answers a scrape reports every worker."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.settings import DEFAULT_METRICS_PORT, SettingsError, load_settings
from tests.support.clock import Deadline
from tests.support.gateway import GatewayProcess, Live, gateway_env
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.test_workers import WORKERS, all_listening, echo, echo_count

METRICS_TOKEN = "metrics-token-0123456789abcdef"


def log_records(proc: GatewayProcess) -> list[dict[str, object]]:
    lines = proc.log.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def edge_serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`edge serve` to its end (the timeout bounds the test's own run time)."""
    return subprocess.run(
        [sys.executable, "-m", "edge", "serve", *args],
        env=GatewayProcess(env).env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def get(http: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, str]:
    async with http.get(url, headers=headers) as resp:
        return resp.status, await resp.text()


def tokens_of(text: str, account: str) -> float:
    """The account's tokens in a scrape."""
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        if f.name == "edge_tokens"
        for s in f.samples
        if s.name == "edge_tokens_total" and s.labels["account"] == account
    )


async def test_metrics_and_probes_on_their_own_port() -> None:
    metrics_port = free_port()
    env = gateway_env(
        "memory://",
        None,
        EDGE_METRICS_PORT=str(metrics_port),
        EDGE_LOG_LEVEL="INFO",
        EDGE_SHUTDOWN_GRACE="5",
    )
    proc = await asyncio.to_thread(GatewayProcess(env).start)
    metrics = f"http://127.0.0.1:{metrics_port}"
    try:
        async with aiohttp.ClientSession() as http:
            tenant = await Live(url=proc.url, http=http).tenant()
            assert await echo(http, proc.url, tenant.key) == 200
            # The client port: no scrape, for strangers (401) or tenants (404), in its shape.
            status, body = await get(http, f"{proc.url}/metrics")
            assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"
            status, body = await get(
                http, f"{proc.url}/metrics", Authorization=f"Bearer {tenant.key}"
            )
            assert status == 404 and json.loads(body)["error"]["type"] == "not_found_error"
            assert tenant.account not in body
            for probe in ("/healthz", "/readyz"):  # kept for load balancers on the client port
                assert (await get(http, f"{proc.url}{probe}"))[0] == 200
            # The metrics port: the scrape, with the tenant's series, and the probes.
            status, text = await get(http, f"{metrics}/metrics")
            assert status == 200 and tokens_of(text, tenant.account) > 0
            assert await get(http, f"{metrics}/healthz") == (200, '{"status": "ok"}')
            assert await get(http, f"{metrics}/readyz") == (200, '{"status": "ready"}')
            # Nothing else: the client API is not reachable there, with or without a key.
            for path in ("/v1/models", "/admin/v1/accounts", "/"):
                status, body = await get(http, f"{metrics}{path}", Authorization="Bearer x")
                assert status == 404 and json.loads(body)["error"]["message"], path
            async with http.post(f"{metrics}/metrics") as resp:
                assert resp.status == 405 and (await resp.json())["error"]["message"]
            # SIGTERM: readiness on the metrics port (the Kubernetes probe's) turns 503 at once.
            assert proc.proc is not None
            proc.signal(signal.SIGTERM)
            deadline = Deadline(10)
            while (await get(http, f"{metrics}/readyz"))[0] != 503:
                deadline.check("/readyz on the metrics port never turned 503 while draining")
                await asyncio.sleep(0.05)
            assert (await get(http, f"{metrics}/healthz"))[0] == 200
            status, text = await get(http, f"{metrics}/metrics")
            assert status == 200 and "edge_draining 1.0" in text
        code = await asyncio.to_thread(proc.proc.wait, 30)  # bounds the test's own run time
        assert code == 0, proc.log.read_text()[-3000:]
    finally:
        proc.kill()
    (listening,) = [r for r in log_records(proc) if r["msg"] == "listening"]
    assert (listening["port"], listening["metrics_port"]) == (proc.port, metrics_port)


async def test_the_metrics_token_holds_on_the_metrics_port() -> None:
    metrics_port = free_port()
    env = gateway_env(
        "memory://", None, EDGE_METRICS_PORT=str(metrics_port), EDGE_METRICS_TOKEN=METRICS_TOKEN
    )
    proc = await asyncio.to_thread(GatewayProcess(env).start)
    metrics = f"http://127.0.0.1:{metrics_port}"
    try:
        async with aiohttp.ClientSession() as http:
            status, body = await get(http, f"{metrics}/metrics")
            assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
            status, _ = await get(http, f"{metrics}/metrics", Authorization="Bearer wrong")
            assert status == 401
            auth = f"Bearer {METRICS_TOKEN}"
            status, text = await get(http, f"{metrics}/metrics", Authorization=auth)
            assert status == 200 and "edge_requests" in text
            assert (await get(http, f"{metrics}/readyz"))[0] == 200  # probes need no token
    finally:
        assert proc.stop() == 0


async def test_same_keeps_metrics_on_the_client_port() -> None:
    env = gateway_env("memory://", None, EDGE_METRICS_PORT="same")
    proc = await asyncio.to_thread(GatewayProcess(env).start)
    try:
        async with aiohttp.ClientSession() as http:
            status, text = await get(http, f"{proc.url}/metrics")
            assert status == 200 and "edge_requests" in text
    finally:
        assert proc.stop() == 0


def test_the_default_is_a_port_of_its_own() -> None:
    assert load_settings({}).metrics_port == DEFAULT_METRICS_PORT == 9464
    assert load_settings({"EDGE_METRICS_PORT": "9100"}).metrics_port == 9100
    assert load_settings({"EDGE_METRICS_PORT": "same"}).metrics_port is None
    for bad in ("0", "65536", "-1", "metrics"):
        with pytest.raises(SettingsError, match="EDGE_METRICS_PORT"):
            load_settings({"EDGE_METRICS_PORT": bad})


def test_the_metrics_port_cannot_be_the_client_port() -> None:
    port = free_port()
    for args in (["--metrics-port", str(port)], []):
        extra = {} if args else {"EDGE_METRICS_PORT": str(port)}
        run = edge_serve(gateway_env("memory://", None, **extra), "--port", str(port), *args)
        assert run.returncode == 2, run.stderr[-2000:]
        assert f"the metrics port {port} is the client port" in run.stderr
    run = edge_serve(gateway_env("memory://", None), "--port", str(port), "--metrics-port", "x")
    assert run.returncode == 2 and "--metrics-port: expected a port number" in run.stderr


def test_a_busy_metrics_port_stops_startup_saying_so(busy_port: int) -> None:
    for workers in ([], ["--workers", "2"]):
        store = "redis://127.0.0.1:1/0" if workers else "memory://"
        env = gateway_env(store, None, EDGE_STORE_STARTUP_TIMEOUT="30")
        ports = ["--port", str(free_port()), "--metrics-port", str(busy_port)]
        run = edge_serve(env, *ports, *workers)
        assert run.returncode == 3, run.stderr[-2000:]
        assert f"address already in use: 127.0.0.1:{busy_port} (the metrics port)" in run.stderr
        assert "Traceback" not in run.stderr


async def test_workers_share_the_metrics_port_and_one_scrape(redis_server: RedisServer) -> None:
    redis_server.command("FLUSHALL")
    metrics_port = free_port()
    env = gateway_env(redis_server.url, None, EDGE_LOG_LEVEL="INFO", EDGE_SHUTDOWN_GRACE="0.2")
    args = ["--workers", str(WORKERS), "--metrics-port", str(metrics_port)]
    proc = GatewayProcess(env, args=args).start()
    metrics = f"http://127.0.0.1:{metrics_port}"
    try:
        await all_listening(proc)
        connector = aiohttp.TCPConnector(force_close=True)  # new connections spread over workers
        async with aiohttp.ClientSession(connector=connector) as http:
            tenant = await Live(url=proc.url, http=http).tenant()
            statuses = [await echo(http, proc.url, tenant.key) for _ in range(30)]
            assert statuses == [200] * 30
            # Every worker's counts, whichever worker the kernel gives the scrape to.
            for _ in range(6):
                status, text = await get(http, f"{metrics}/metrics")
                assert status == 200 and echo_count(text) == 30
                assert (await get(http, f"{metrics}/readyz"))[0] == 200
            status, _ = await get(http, f"{proc.url}/metrics", Authorization=f"Bearer {tenant.key}")
            assert status == 404
        assert proc.proc is not None
        proc.signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.proc.wait, 20)  # bounds the test's own run time
        assert code == 0, proc.log.read_text()[-4000:]
    finally:
        proc.kill()
    records = log_records(proc)
    listening = [r for r in records if r["msg"] == "listening"]
    assert len({r["pid"] for r in listening}) == WORKERS
    assert {r["metrics_port"] for r in listening} == {metrics_port}

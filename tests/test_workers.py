"""`edge serve --workers N`: N processes on one port, one merged /metrics, and a parent that
forwards SIGTERM and exits 0 once its workers have."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clock import Deadline
from tests.support.gateway import ADMIN_TOKEN, GatewayProcess, Live, gateway_env
from tests.support.redis_server import RedisServer

WORKERS = 3


async def echo(http: aiohttp.ClientSession, url: str, key: str) -> int:
    async with http.post(
        f"{url}/v1/chat/completions",
        json={"model": "local/echo", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}", "Connection": "close"},
    ) as resp:
        await resp.read()
        return resp.status


async def all_listening(proc: GatewayProcess, timeout: float = 20.0) -> None:
    """Wait until every worker listens: the first one alone already answers readiness, and
    the kernel spreads connections only over the sockets bound when they arrive."""
    deadline = Deadline(timeout)
    while True:
        lines = proc.log.read_text().splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        if len({r["pid"] for r in records if r["msg"] == "listening"}) == WORKERS:
            return
        deadline.check(lines[-20:])
        await asyncio.sleep(0.05)


def echo_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        if family.name == "edge_requests":
            return sum(
                s.value
                for s in family.samples
                if s.name == "edge_requests_total" and s.labels["model"] == "local/echo"
            )
    return 0.0


async def test_workers_share_a_port_and_a_scrape(redis_server: RedisServer) -> None:
    redis_server.command("FLUSHALL")
    env = gateway_env(redis_server.url, None, EDGE_LOG_LEVEL="INFO", EDGE_SHUTDOWN_GRACE="0.2")
    proc = GatewayProcess(env, args=["--workers", str(WORKERS)]).start()
    try:
        await all_listening(proc)
        connector = aiohttp.TCPConnector(force_close=True)  # new connections spread over workers
        async with aiohttp.ClientSession(connector=connector) as http:
            tenant = await Live(url=proc.url, http=http).tenant()
            statuses = [await echo(http, proc.url, tenant.key) for _ in range(40)]
            assert statuses == [200] * 40
            # Every worker's counts, whichever worker answers the scrape.
            for _ in range(5):
                async with http.get(f"{proc.url}/metrics") as resp:
                    assert echo_count(await resp.text()) == 40
        assert proc.proc is not None
        proc.signal(signal.SIGTERM)
        # The wait's 20 s bounds the test's own run time; a clean exit is what is asserted.
        code = await asyncio.to_thread(proc.proc.wait, 20)
        assert code == 0, proc.log.read_text()[-4000:]
    finally:
        proc.kill()
    text = proc.log.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    started_line = next(r for r in records if r["msg"] == "workers started")
    workers = set(started_line["workers"])
    assert len(workers) == WORKERS
    answered = {r["pid"] for r in records if r["msg"] == "request" and r["model"] == "local/echo"}
    assert answered <= workers and len(answered) >= 2  # the kernel spread the connections
    exited = [r for r in records if r["msg"] == "worker exited"]
    assert {r["pid"] for r in exited} == workers and {r["code"] for r in exited} == {0}
    assert ADMIN_TOKEN not in text


def test_workers_fail_together(redis_server: RedisServer) -> None:
    """A worker that cannot start stops the others, and the parent exits with its code."""
    env = gateway_env(
        "redis://127.0.0.1:1/0", None, EDGE_STORE_STARTUP_TIMEOUT="0.3", EDGE_LOG_LEVEL="INFO"
    )
    gw = GatewayProcess(env)
    run = subprocess.run(
        [sys.executable, "-m", "edge", "serve", "--port", str(gw.port), "--workers", "2"],
        env=gw.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 3, run.stderr[-2000:]
    assert "did not answer" in run.stderr


def test_workers_need_a_shared_store() -> None:
    gw = GatewayProcess(gateway_env("memory://", None))
    run = subprocess.run(
        [sys.executable, "-m", "edge", "serve", "--port", str(gw.port), "--workers", "2"],
        env=gw.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 2 and "--workers needs a shared store" in run.stderr


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its reaping is left


def test_workers_stop_when_the_parent_is_killed(redis_server: RedisServer) -> None:
    """SIGKILL on the parent leaves no worker behind holding the port (Linux)."""
    env = gateway_env(redis_server.url, None, EDGE_LOG_LEVEL="INFO", EDGE_SHUTDOWN_GRACE="0")
    proc = GatewayProcess(env, args=["--workers", "2"]).start()
    try:
        deadline = Deadline(10)
        workers: list[int] = []
        while not workers and not deadline.passed():
            for line in proc.log.read_text().splitlines():
                if '"workers started"' in line:
                    workers = json.loads(line)["workers"]
            time.sleep(0.02)
        assert len(workers) == 2
        proc.kill()
        deadline = Deadline(10)
        while any(_alive(pid) for pid in workers) and not deadline.passed():
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in workers)
    finally:
        proc.kill()


def test_a_stop_while_workers_start_is_clean(redis_server: RedisServer) -> None:
    """SIGTERM as soon as the workers are spawned, before they can handle it: exit 0."""
    env = gateway_env(redis_server.url, None, EDGE_LOG_LEVEL="INFO", EDGE_SHUTDOWN_GRACE="0")
    gw = GatewayProcess(env)
    with gw.log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "serve", "--port", str(gw.port), "--workers", "2"],
            env=gw.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = Deadline(20)
    while '"workers started"' not in gw.log.read_text():
        assert proc.poll() is None and not deadline.passed(), gw.log.read_text()[-2000:]
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(20)
    text = gw.log.read_text()
    assert code == 0, text[-3000:]
    # At least one worker was ended by the forwarded signal itself, not by its handler.
    assert '"code":-15' in text, text[-3000:]

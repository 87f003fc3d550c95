"""One gateway per port: only the workers of one `edge serve --workers N` share a port; any
other `edge serve` on a port already in use exits at once, saying so."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.support.clock import Deadline
from tests.support.gateway import GatewayProcess, gateway_env
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer


def edge_serve(port: int, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `edge serve` on loopback to its end (the timeout bounds the test, nothing else)."""
    return subprocess.run(
        [sys.executable, "-m", "edge", "serve", "--port", str(port), *args],
        env=GatewayProcess(env).env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def healthy(proc: GatewayProcess) -> bool:
    with urllib.request.urlopen(f"{proc.url}/healthz", timeout=5) as resp:
        status: int = resp.status
        return status == 200


def in_use(port: int) -> str:
    return f"address already in use: 127.0.0.1:{port}"


@pytest.fixture(scope="module")
def first() -> Iterator[GatewayProcess]:
    """A lone gateway holding its port."""
    proc = GatewayProcess(gateway_env("memory://", None)).start()
    yield proc
    assert proc.stop() == 0, proc.log.read_text()[-2000:]


def test_a_second_gateway_on_a_busy_port_exits_saying_so(first: GatewayProcess) -> None:
    run = edge_serve(first.port, gateway_env("memory://", None))
    assert run.returncode == 3, run.stderr[-2000:]
    assert in_use(first.port) in run.stderr
    assert "Traceback" not in run.stderr
    # The first one keeps the port, alone.
    assert first.proc is not None and first.proc.poll() is None
    assert healthy(first)


def test_the_port_is_checked_before_the_store_is_waited_for(first: GatewayProcess) -> None:
    """Nothing listens on port 1: a store check first would retry for a minute, logging it."""
    env = gateway_env(
        "redis://127.0.0.1:1/0", None, EDGE_STORE_STARTUP_TIMEOUT="60", EDGE_LOG_LEVEL="INFO"
    )
    run = edge_serve(first.port, env)
    assert run.returncode == 3, run.stderr[-2000:]
    assert in_use(first.port) in run.stderr
    assert "store not reachable" not in run.stderr and "did not answer" not in run.stderr


def test_workers_do_not_join_a_single_gateways_port(
    first: GatewayProcess, redis_server: RedisServer
) -> None:
    env = gateway_env(redis_server.url, None, EDGE_LOG_LEVEL="INFO")
    run = edge_serve(first.port, env, "--workers", "2")
    assert run.returncode == 3, run.stderr[-2000:]
    assert in_use(first.port) in run.stderr
    assert "workers started" not in run.stderr  # refused before any worker was spawned
    assert healthy(first)


def test_a_bind_failure_for_another_reason_says_what_it_is() -> None:
    """192.0.2.1 (TEST-NET-1) is on no interface here: nothing is sent, the bind is refused."""
    port = free_port()
    run = edge_serve(port, gateway_env("memory://", None), "--host", "192.0.2.1")
    assert run.returncode == 3, run.stderr[-2000:]
    assert f"cannot listen on 192.0.2.1:{port}" in run.stderr
    assert "cannot assign requested address" in run.stderr
    assert "already in use" not in run.stderr


def _listening_pids(proc: GatewayProcess, count: int) -> set[int]:
    """The pids that logged `listening`, once `count` of them have (a bound on the wait)."""
    deadline = Deadline(30)
    while True:
        lines = proc.log.read_text().splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        pids = {r["pid"] for r in records if r["msg"] == "listening"}
        if len(pids) >= count:
            return pids
        deadline.check(lines[-20:])
        time.sleep(0.05)


def test_a_worker_group_shares_its_port_with_nobody_else(redis_server: RedisServer) -> None:
    env = gateway_env(redis_server.url, None, EDGE_LOG_LEVEL="INFO", EDGE_SHUTDOWN_GRACE="0")
    group = GatewayProcess(env, args=["--workers", "2"]).start()
    try:
        assert len(_listening_pids(group, 2)) == 2  # its two workers share the port
        alone = edge_serve(group.port, env)
        assert alone.returncode == 3, alone.stderr[-2000:]
        assert in_use(group.port) in alone.stderr and '"listening"' not in alone.stderr
        other_group = edge_serve(group.port, env, "--workers", "2")
        assert other_group.returncode == 3, other_group.stderr[-2000:]
        assert in_use(group.port) in other_group.stderr
        assert "workers started" not in other_group.stderr
        assert healthy(group)
        assert group.proc is not None and group.proc.poll() is None
    finally:
        code = group.stop()
    assert code == 0, group.log.read_text()[-3000:]

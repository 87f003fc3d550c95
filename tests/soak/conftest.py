"""The soak stack: a real redis-server, the marked-stream provider in a process of its own, and
`edge serve` processes pointed at both; plus what the runs read from /proc."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.bench.limits import raise_fd_limit
from tests.support.gateway import GatewayProcess, Live, gateway_env
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer


@dataclass
class Stack:
    """One soak run's processes, and an invoke key for the gateway."""

    redis: RedisServer
    upstream: subprocess.Popen[bytes]
    upstream_port: int
    gateway: GatewayProcess
    key: str
    key_id: str

    @property
    def pid(self) -> int:
        """The gateway's process id."""
        assert self.gateway.proc is not None
        return self.gateway.proc.pid


async def upstream_stats(port: int) -> dict[str, Any]:
    """The marked-stream provider's counters."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    body = await reader.readexactly(length)
    writer.close()
    stats: dict[str, Any] = orjson.loads(body)
    return stats


def rss_mib(pid: int) -> float:
    """Resident memory of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def peak_rss_mib(pid: int) -> float:
    """The highest resident memory a process has had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def open_fds(pid: int) -> int:
    """Open file descriptors of a process."""
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def sockets_to(pid: int, port: int) -> int:
    """How many of a process's descriptors are TCP connections to a port (e.g. its Redis pool,
    which keeps its connections open by design)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes and int(fields[2].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def soak_stack() -> AsyncIterator[StackFactory]:
    """Start the stack with extra gateway settings (`sndbuf`: the provider's SO_SNDBUF)."""
    raise_fd_limit(20000)
    started: list[Stack] = []

    async def start(sndbuf: int | None = None, **env: str) -> Stack:
        redis = RedisServer().start()
        port = free_port()
        args = [sys.executable, "-m", "tests.support.stream_upstream", "--port", str(port)]
        if sndbuf:
            args += ["--sndbuf", str(sndbuf)]
        upstream = subprocess.Popen(args)
        deadline = time.monotonic() + 10
        while True:
            try:
                await upstream_stats(port)
                break
            except OSError:
                assert time.monotonic() < deadline, "the stream provider did not start"
                await asyncio.sleep(0.05)
        gateway = GatewayProcess(
            gateway_env(redis.url, f"http://127.0.0.1:{port}", EDGE_LOG_LEVEL="WARNING", **env)
        )
        await asyncio.to_thread(gateway.start)
        async with aiohttp.ClientSession() as http:
            tenant = await Live(url=gateway.url, http=http).tenant()
        stack = Stack(redis, upstream, port, gateway, tenant.key, tenant.key_id)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        await asyncio.to_thread(stack.gateway.stop)
        stack.upstream.kill()
        stack.upstream.wait()
        stack.redis.stop()


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of some values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

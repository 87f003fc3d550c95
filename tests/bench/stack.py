"""The processes under test: redis-server, the fake upstream and `edge serve`, on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.bench import procstat
from tests.bench.report import RELAY
from tests.support.gateway import GatewayProcess, Live, gateway_env
from tests.support.ports import free_port

KEY_RPM = 10_000_000  # a per-key limit that is checked on every request but never denies
BRANCH = "br-main"


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


class FakeUpstreamProcess:
    """`python -m tests.bench.upstream` on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL (no /v1)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeUpstreamProcess:
        """Start and wait until it accepts connections."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.upstream", "--port", str(self.port)]
        )
        wait_port(self.port, self.proc)
        return self

    def pids(self) -> list[int]:
        """Its process (its CPU is what answering directly costs)."""
        return [self.proc.pid] if self.proc is not None else []

    def stop(self) -> None:
        """Terminate."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    async def shape(self, **shape: Any) -> None:
        """Change what the fake answers with (see payloads.Shape)."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.url}/_bench/shape", json=shape) as resp,
        ):
            resp.raise_for_status()


@dataclass
class Service:
    """A server the bench starts on a loopback port, in its own process group (so that its
    children are stopped with it), its output in `log`."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str] | None = None
    cwd: Path | None = None
    log: Path | None = None
    startup: float = 30.0  # seconds it may take to listen
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Service:
        """Start and wait until it accepts connections (stopped again if it never does)."""
        out = self.log.open("wb") if self.log is not None else None
        try:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=out or subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if out is not None:
                out.close()
        try:
            wait_port(self.port, self.proc, self.startup)
        except RuntimeError as exc:
            self.stop()
            raise RuntimeError(f"{self.name}: {exc}{self._log_tail()}") from None
        return self

    def _log_tail(self) -> str:
        if self.log is None or not self.log.is_file():
            return ""
        tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
        return "; its last lines: " + " / ".join(tail) if tail else ""

    def pids(self) -> list[int]:
        """The process and its children."""
        return procstat.tree(self.proc.pid) if self.proc is not None else []

    def stop(self) -> None:
        """SIGTERM to the whole group, SIGKILL after 10 s."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Children that outlived their parent are still in its group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def start_relay(upstream_url: str) -> Service:
    """The bare aiohttp relay (tests/bench/floor.py) in front of the fake upstream."""
    port = free_port()
    argv = [sys.executable, "-m", "tests.bench.floor", "--port", str(port)]
    return Service(RELAY, [*argv, "--upstream", upstream_url], port).start()


@dataclass
class Gateway:
    """A running `edge serve` and the key the bench calls it with."""

    process: GatewayProcess
    key: str = ""

    @property
    def url(self) -> str:
        """Base URL."""
        return self.process.url

    @property
    def pid(self) -> int:
        """The serving process (the parent, when there are workers)."""
        assert self.process.proc is not None
        return self.process.proc.pid

    def pids(self) -> list[int]:
        """The serving process and its workers."""
        return procstat.tree(self.pid)


def start_gateway(
    redis_url: str,
    upstream_url: str,
    log: Path,
    log_level: str,
    workers: int = 1,
    config: Path | None = None,
) -> Gateway:
    """`edge serve` with production settings: Redis store, API keys, quotas, INFO logs (and
    `config` as its EDGE_CONFIG: catalog additions)."""
    # No load balancer to wait for on stop: skip the shutdown grace period.
    env = gateway_env(redis_url, upstream_url, EDGE_LOG_LEVEL=log_level, EDGE_SHUTDOWN_GRACE="0")
    if config is not None:
        env["EDGE_CONFIG"] = str(config)
    args = ["--workers", str(workers)] if workers > 1 else []
    process = GatewayProcess(env, args=args)
    process.log = log
    process.start()
    return Gateway(process)


async def provision(gateway: Gateway) -> None:
    """An account, a branch and an invoke key with a per-key requests-per-minute limit."""
    async with aiohttp.ClientSession() as http:
        live = Live(url=gateway.url, http=http)
        tenant = await live.tenant(
            account="acct_bench", branch=BRANCH, quota={"requests_per_minute": KEY_RPM}
        )
    gateway.key = tenant.key


@dataclass(frozen=True, slots=True)
class Probe:
    """One request's status, headers and the start of its body (status 0: no answer)."""

    status: int
    headers: dict[str, str]
    text: str


async def probe(url: str, headers: dict[str, str], body: bytes | None = None) -> Probe:
    """POST `body` (GET without one) and read the answer."""
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.request("POST" if body else "GET", url, data=body, headers=headers) as resp,
        ):
            return Probe(resp.status, dict(resp.headers), (await resp.text())[:300])
    except (TimeoutError, aiohttp.ClientError) as exc:
        return Probe(0, {}, str(exc))


def serve_help() -> str:
    """`edge serve --help`, to see which options this version has."""
    out = subprocess.run(
        [sys.executable, "-m", "edge", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return out.stdout

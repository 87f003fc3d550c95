"""Live gateways on loopback: in-process (same event loop) or as separate processes."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from edge.app import create_app
from edge.server import make_runner
from edge.settings import Settings, load_settings
from tests.support.clock import Deadline
from tests.support.ports import free_port

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
HMAC_SECRET = "test-hmac-secret-0123456789abcdef0123456789"
UPSTREAM_SECRET = "sk-upstream-secret-never-shown-0123456789"


def gateway_env(store_url: str, upstream_url: str | None, **extra: str) -> dict[str, str]:
    """The environment a test gateway runs with: providers pointed at the fake upstream."""
    env = {
        "EDGE_STORE_URL": store_url,
        "EDGE_ADMIN_TOKEN": ADMIN_TOKEN,
        "EDGE_HMAC_SECRET": HMAC_SECRET,
        "EDGE_LOG_LEVEL": "WARNING",
        "EDGE_SHUTDOWN_GRACE": "0",  # tests that need a grace period set their own
        # The suite shares two cores with its own load: a 100 ms Redis timeout would now and
        # then fire on a merely busy event loop. Tests of the timeout itself set their own.
        "EDGE_REDIS_TIMEOUT": "1.0",
        # Test gateways serve /metrics on their one free port, where the tests scrape it: the
        # default metrics port is fixed, and gateways running at once would all want it. The
        # metrics port's own tests (tests/test_exhaust_metrics_port.py) give one.
        "EDGE_METRICS_PORT": "same",
    }
    if upstream_url:
        env.update(
            {
                "OPENAI_API_KEY": UPSTREAM_SECRET,
                "OPENAI_BASE_URL": f"{upstream_url}/v1",
                "ANTHROPIC_API_KEY": UPSTREAM_SECRET,
                "ANTHROPIC_BASE_URL": upstream_url,
                "GEMINI_API_KEY": UPSTREAM_SECRET,
                "GEMINI_BASE_URL": upstream_url,
                "DATABRICKS_BASE_URL": f"{upstream_url}/v1",
                "DATABRICKS_TOKEN": UPSTREAM_SECRET,
            }
        )
    env.update(extra)
    return env


@dataclass
class Tenant:
    """An account with a branch and an invoke key."""

    account: str
    branch: str
    key: str
    key_id: str


@dataclass
class Live:
    """A gateway serving on loopback, and an admin client for it."""

    url: str
    app: web.Application | None = None
    runner: web.AppRunner | None = None
    http: aiohttp.ClientSession | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    async def admin(
        self, method: str, path: str, json: Any = None, token: str = ADMIN_TOKEN
    ) -> Any:
        """Call the admin API; returns (status, body)."""
        assert self.http is not None
        async with self.http.request(
            method,
            f"{self.url}/admin/v1{path}",
            json=json,
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            return resp.status, await resp.json(content_type=None)

    async def tenant(
        self,
        account: str | None = None,
        branch: str = "br-main",
        scopes: list[str] | None = None,
        quota: dict[str, Any] | None = None,
    ) -> Tenant:
        """Create an account, a branch and a key bound to it."""
        account = account or f"acct_{secrets.token_hex(4)}"
        status, _ = await self.admin("POST", "/accounts", {"id": account})
        assert status in (201, 409)
        status, _ = await self.admin(
            "POST", f"/accounts/{account}/branches", {"id": branch, "parent": None}
        )
        assert status in (201, 409)
        status, body = await self.admin(
            "POST",
            "/keys",
            {"account": account, "branch": branch, "scopes": scopes or ["ai_gateway:invoke"]},
        )
        assert status == 201, body
        if quota:
            status, applied = await self.admin("PUT", f"/keys/{body['id']}/quota", quota)
            assert status == 200, applied
        return Tenant(account=account, branch=branch, key=body["key"], key_id=body["id"])


async def start_live(settings: Settings) -> Live:
    """Run a gateway in this event loop with production server settings."""
    port = free_port()
    settings = settings.with_overrides(host="127.0.0.1", port=port)
    app = create_app(settings)
    runner = make_runner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return Live(
        url=f"http://127.0.0.1:{port}", app=app, runner=runner, http=aiohttp.ClientSession()
    )


async def stop_live(live: Live) -> None:
    """Stop an in-process gateway."""
    if live.http is not None:
        await live.http.close()
    if live.runner is not None:
        await live.runner.cleanup()


def settings_for(env: dict[str, str]) -> Settings:
    """Settings as the gateway would load them from this environment."""
    return load_settings(env)


class GatewayProcess:
    """`edge serve` as a separate process."""

    def __init__(
        self, env: dict[str, str], port: int | None = None, args: list[str] | None = None
    ) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, **env}
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(f"/tmp/edge-test-gw-{self.port}.log")
        # The folder it runs in: `python -m` imports `edge` from there first (another checkout's,
        # for `make bench-paired`); None runs it where the caller runs.
        self.cwd: Path | None = None

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> GatewayProcess:
        """Start and wait for /healthz."""
        out = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "serve", "--port", str(self.port), *self.args],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
        )
        deadline = Deadline(timeout)
        while not deadline.passed():
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=0.5) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("gateway did not start in time")

    def signal(self, sig: int) -> None:
        """Send a signal."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> int | None:
        """SIGTERM and wait; SIGKILL if it will not exit."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

"""A cluster on one machine: three `edge serve` replicas behind nginx (round-robin), one
redis-server and the fake upstream, all on loopback."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clock import Deadline
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import GatewayProcess, Live, Tenant, gateway_env
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.test_background import slow_frames
from tests.test_responses_chain import answer, texts
from tests.test_responses_passthrough import parse_sse

REPLICAS = 3
GRACE = 0.5
TIMEOUT = 15.0
DONE = b"data: [DONE]\n\n"
CHUNK = (
    b'data: {"id":"c","object":"chat.completion.chunk",'
    b'"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
)

# Round-robin over the replicas. A replica's 503 `server_shutdown` refusal means the request
# was never worked on, so nginx may pass it (a POST too) to the next replica, as it does
# when a connection is refused once the replica has exited.
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream edge {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://edge;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout 60s;
            proxy_next_upstream error timeout http_503 non_idempotent;
            proxy_next_upstream_tries {replicas};
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise RuntimeError("nginx is not installed: run `make test` (it installs it)")
    return found


class Nginx:
    """nginx in the foreground with its own config, on a free loopback port."""

    def __init__(self, directory: Path, upstreams: list[int]) -> None:
        self.port = free_port()
        self.dir = directory
        servers = "\n".join(f"        server 127.0.0.1:{p};" for p in upstreams)
        conf = NGINX_CONF.format(
            dir=directory, servers=servers, port=self.port, replicas=len(upstreams)
        )
        (directory / "nginx.conf").write_text(conf)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        self.proc = subprocess.Popen(
            [nginx_binary(), "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        import socket

        deadline = Deadline(10)
        while not deadline.passed():
            assert self.proc.poll() is None, (self.dir / "error.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Cluster:
    """The replicas, nginx in front, and a client session."""

    def __init__(self, replicas: list[GatewayProcess], nginx: Nginx, http: aiohttp.ClientSession):
        self.replicas = replicas
        self.nginx = nginx
        self.http = http
        self.live = Live(url=nginx.url, http=http)

    async def open_streams(self, replica: GatewayProcess) -> int:
        """Streams a replica is serving now, read from its own /metrics."""
        async with self.http.get(f"{replica.url}/metrics") as resp:
            families = text_string_to_metric_families(await resp.text())
            return int(
                sum(s.value for f in families if f.name == "edge_open_streams" for s in f.samples)
            )

    def chat_calls(self, replica: GatewayProcess) -> int:
        """Chat Completions calls a replica answered (its JSON request lines)."""
        lines = [json.loads(x) for x in replica.log.read_text().splitlines() if x.startswith("{")]
        return sum(
            1 for r in lines if r["msg"] == "request" and r["route"] == "/v1/chat/completions"
        )


@pytest.fixture
def replicas(redis_server: RedisServer, fake: FakeUpstream) -> Iterator[list[GatewayProcess]]:
    redis_server.command("FLUSHALL")
    env = gateway_env(
        redis_server.url,
        fake.url,
        EDGE_LOG_LEVEL="INFO",
        EDGE_SHUTDOWN_GRACE=str(GRACE),
        EDGE_SHUTDOWN_TIMEOUT=str(TIMEOUT),
        EDGE_EXPECTED_REPLICAS=str(REPLICAS),
    )
    procs = [GatewayProcess(env) for _ in range(REPLICAS)]
    try:
        for proc in procs:
            proc.start()
        yield procs
    finally:
        for proc in procs:
            proc.kill()


@pytest.fixture
async def cluster(replicas: list[GatewayProcess], tmp_path: Path) -> AsyncIterator[Cluster]:
    nginx = Nginx(tmp_path, [r.port for r in replicas]).start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Cluster(replicas, nginx, http)
    finally:
        nginx.stop()


async def echo(cluster: Cluster, tenant: Tenant, retries: int = 20) -> int:
    """One call, retried only when the connection is refused (as a careful client does)."""
    for _ in range(retries):
        try:
            async with cluster.http.post(
                f"{cluster.nginx.url}/v1/chat/completions",
                json={"model": "local/echo", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": f"Bearer {tenant.key}"},
            ) as resp:
                await resp.read()
                return resp.status
        except aiohttp.ClientConnectorError:
            await asyncio.sleep(0.05)
    raise AssertionError("connection refused on every try")


async def test_per_key_limit_is_exact_across_replicas(cluster: Cluster) -> None:
    tenant = await cluster.live.tenant(quota={"requests_per_minute": 10})
    statuses = [await echo(cluster, tenant) for _ in range(24)]
    assert statuses.count(200) == 10 and statuses.count(429) == 14
    served = [cluster.chat_calls(r) for r in cluster.replicas]
    # Round-robin: every replica took its share, and still the limit held exactly.
    assert sum(served) == 24 and all(n >= 6 for n in served), served


async def stream(cluster: Cluster, tenant: Tenant, started: asyncio.Queue[int]) -> bytes:
    async with cluster.http.post(
        f"{cluster.nginx.url}/v1/chat/completions",
        json={"model": "gpt-5-4", "stream": True, "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as resp:
        assert resp.status == 200
        first = await resp.content.readany()
        started.put_nowait(1)
        return first + await resp.read()


async def refusing(victim: GatewayProcess, limit: float = 10.0) -> None:
    """Wait (bounded) until the victim logs that its grace is over and it refuses new work."""
    deadline = Deadline(limit)
    while '"msg":"refusing new requests"' not in victim.log.read_text():
        deadline.check("the stopped replica never began refusing")
        await asyncio.sleep(0.02)


PROBE_ID = "probe-refusal"


async def probe_refusal(cluster: Cluster, victim: GatewayProcess, tenant: Tenant) -> None:
    """Once past its grace, the stopped replica itself answers a new call with a 503
    `server_shutdown` that tells the client to retry and closes the connection."""
    await refusing(victim)
    async with cluster.http.post(
        f"{victim.url}/v1/chat/completions",
        json={"model": "local/echo", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {tenant.key}", "x-request-id": PROBE_ID},
    ) as resp:
        body = await resp.json()
        assert resp.status == 503, body
        assert body["error"]["code"] == "server_shutdown"
        assert resp.headers["Retry-After"] == "1"
        assert resp.headers.get("Connection", "").lower() == "close"


async def test_sigterm_mid_stream_drops_nothing(cluster: Cluster, fake: FakeUpstream) -> None:
    """One replica is stopped while it serves streams: they finish, and the others take
    every new request, so a client that retries on connection refusal sees no failure."""
    tenant = await cluster.live.tenant()
    streams = 6
    for _ in range(streams):
        fake.push(Scenario(frames=[CHUNK] * 30 + [DONE], delay_chunks=0.2))
    started: asyncio.Queue[int] = asyncio.Queue()
    running = [asyncio.ensure_future(stream(cluster, tenant, started)) for _ in range(streams)]
    for _ in range(streams):
        await asyncio.wait_for(started.get(), 10)
    victim = cluster.replicas[0]
    assert fake.open_streams == streams
    assert await cluster.open_streams(victim) > 0  # round-robin gave it some to finish
    victim.signal(signal.SIGTERM)
    signalled_at = time.time()

    statuses: list[int] = []
    probed = asyncio.ensure_future(probe_refusal(cluster, victim, tenant))
    # Paced, so the calls span the grace period and the refusals after it however fast the
    # machine is (unpaced, the count bound could be spent inside the grace period). The load
    # runs 4 s, and on until the replica refuses, bounded by the count.
    paced = Deadline(4.0)
    while (not paced.passed() or not probed.done()) and len(statuses) < 1000:
        statuses += await asyncio.gather(*(echo(cluster, tenant) for _ in range(4)))
        await asyncio.sleep(0.02)
    await probed
    bodies = await asyncio.wait_for(asyncio.gather(*running), TIMEOUT)
    assert victim.proc is not None
    code = await asyncio.to_thread(victim.proc.wait, TIMEOUT)

    assert code == 0
    assert all(b.endswith(DONE) for b in bodies)
    assert statuses and set(statuses) == {200}, statuses
    lines = [json.loads(x) for x in victim.log.read_text().splitlines() if x.startswith("{")]
    assert "shutdown deadline reached" not in {r["msg"] for r in lines}
    # It refused calls that came through nginx too (nginx passed those on): the refusal was
    # seen by clients' calls, not only by the direct probe.
    refused = [r for r in lines if r.get("status") == 503 and r["request_id"] != PROBE_ID]
    assert refused, [r for r in lines if r["ts"] >= signalled_at - 1]
    others = sum(cluster.chat_calls(r) for r in cluster.replicas[1:])
    assert others >= len(statuses) - cluster.chat_calls(victim)


async def test_response_stored_on_one_replica_is_read_and_chained_on_another(
    cluster: Cluster, fake: FakeUpstream
) -> None:
    """A response stored through replica A is read through B and C, and chained through B."""
    a, b, c = cluster.replicas
    tenant = await cluster.live.tenant()
    headers = {"Authorization": f"Bearer {tenant.key}"}
    fake.push(
        Scenario(body=answer("resp_c1", "first answer")),
        Scenario(body=answer("resp_c2", "second answer")),
    )
    async with cluster.http.post(
        f"{a.url}/v1/responses", json={"model": "gpt-5-4", "input": "turn one"}, headers=headers
    ) as resp:
        assert resp.status == 200
        first = await resp.json()
    for other in (b, c, cluster.nginx):
        async with cluster.http.get(
            f"{other.url}/v1/responses/{first['id']}", headers=headers
        ) as r:
            assert r.status == 200
            assert (await r.json())["output"] == first["output"]
    chained = {"model": "gpt-5-4", "input": "turn two", "previous_response_id": first["id"]}
    async with cluster.http.post(f"{b.url}/v1/responses", json=chained, headers=headers) as r:
        assert r.status == 200
    assert texts(fake.requests[-1].body["input"]) == ["turn one", "first answer", "turn two"]


async def test_background_run_started_on_one_replica_streams_from_another(
    cluster: Cluster, fake: FakeUpstream
) -> None:
    """A background run started through replica A streams, whole and in order, from B."""
    a, b, _ = cluster.replicas
    tenant = await cluster.live.tenant()
    headers = {"Authorization": f"Bearer {tenant.key}"}
    fake.push(Scenario(frames=slow_frames(), delay_chunks=0.005))
    body = {"model": "gpt-5-4", "input": "write", "background": True, "stream": False}
    async with cluster.http.post(f"{a.url}/v1/responses", json=body, headers=headers) as r:
        assert r.status == 200
        queued = await r.json()
    assert queued["status"] == "queued"
    async with cluster.http.get(
        f"{b.url}/v1/responses/{queued['id']}?stream=true", headers=headers
    ) as r:
        assert r.status == 200
        events = [json.loads(data) for _, data in parse_sse(await r.read())]
    numbers = [e["sequence_number"] for e in events]
    assert numbers == list(range(len(numbers)))  # from the first event, nothing missing or doubled
    assert events[-1]["type"] == "response.completed"
    async with cluster.http.get(f"{b.url}/v1/responses/{queued['id']}", headers=headers) as r:
        assert (await r.json())["status"] == "completed"

"""Strangers and refused callers cannot take the process from everyone else: for 20 s, four
clients send unauthenticated gzip bombs (~1 MiB on the wire, 1 GiB inflated) and four send
27 MiB bodies with a valid key of a blocked account, each back to back; meanwhile `/healthz`,
probed every 0.5 s as the liveness probe would, answers every probe 200 within 0.2 s and the
gateway's resident memory stays under 300 MB. (The mechanisms are in make test:
tests/test_inflate.py, tests/test_cheap_checks.py.)

The probe runs in a thread of its own with a blocking socket, so the senders' work in this
process's event loop does not count as the gateway's latency."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import zlib
from collections import Counter

import aiohttp
import orjson
import pytest

from tests.soak.conftest import peak_rss_mib, percentile, rss_mib
from tests.support.gateway import ADMIN_TOKEN, GatewayProcess, gateway_env
from tests.support.rawhttp import connect, host_port, read_answer

pytestmark = [pytest.mark.soak, pytest.mark.timeout(300)]
SECONDS = 20.0
SENDERS = 4  # of each kind
BODY_MIB = 27
BOMB_INFLATED = 1 << 30
PROBE_EVERY = 0.5
PROBE_TIMEOUT = 2.0
PROBE_BOUND = 0.2
RSS_BOUND_MB = 300
MAX_SENDS = 10_000  # per sender, a bound on the loop besides its deadline


def _bomb() -> bytes:
    """A gzip body of ~1 MiB that inflates to 1 GiB of spaces inside a JSON object."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(b"{")]
    block = b" " * (1 << 20)
    for _ in range(BOMB_INFLATED // len(block)):
        parts.append(compressor.compress(block))
    parts.append(compressor.compress(b"}"))
    parts.append(compressor.flush())
    return b"".join(parts)


def _big_body() -> bytes:
    text = "x" * (BODY_MIB * 1024 * 1024 - 200)
    return orjson.dumps({"model": "local/echo", "messages": [{"role": "user", "content": text}]})


def _head(body: bytes, *headers: str) -> bytes:
    lines = ["POST /v1/chat/completions HTTP/1.1", "Host: localhost", *headers]
    lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _blocked_key(url: str) -> str:
    """An invoke key of an account that is then blocked."""
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession(headers=auth) as http:

        async def admin(path: str, body: dict[str, object]) -> dict[str, str]:
            async with http.post(f"{url}/admin/v1{path}", json=body) as resp:
                assert resp.status < 300, await resp.text()
                answer: dict[str, str] = await resp.json()
                return answer

        await admin("/accounts", {"id": "acct_soak_blocked"})
        key = await admin("/keys", {"account": "acct_soak_blocked"})
        await admin("/accounts/acct_soak_blocked/block", {})
        return key["key"]


def _probe_once(host: str, port: int) -> tuple[int, float]:
    """One GET /healthz on a new connection: (status, seconds); status 0 if it failed."""
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT) as sock:
            sock.settimeout(PROBE_TIMEOUT)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            head = b""
            while b"\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    except (OSError, ValueError, IndexError):
        status = 0
    return status, time.monotonic() - started


async def test_bombs_and_big_bodies_leave_healthz_and_memory_alone() -> None:
    gateway = await asyncio.to_thread(GatewayProcess(gateway_env("memory://", None)).start)
    assert gateway.proc is not None
    pid = gateway.proc.pid
    try:
        key = await _blocked_key(gateway.url)
        bomb, big = await asyncio.gather(asyncio.to_thread(_bomb), asyncio.to_thread(_big_body))
        rss_before = rss_mib(pid)
        hwm_before = peak_rss_mib(pid)
        bomb_request = _head(bomb, "Content-Encoding: gzip") + bomb
        big_request = _head(big, f"Authorization: Bearer {key}") + big

        statuses: dict[str, Counter[str]] = {"bomb": Counter(), "big": Counter()}
        sent = Counter[str]()
        deadline = time.monotonic() + SECONDS
        stop = threading.Event()

        async def sender(kind: str, raw: bytes) -> None:
            for _ in range(MAX_SENDS):
                if time.monotonic() >= deadline:
                    return
                sent[kind] += 1
                try:
                    reader, writer = await connect(gateway.url)
                except OSError as exc:
                    statuses[kind][type(exc).__name__] += 1
                    continue
                try:
                    writer.write(raw)  # buffered here; the gateway reads only what it wants
                    answer = await read_answer(reader, timeout=10)
                    statuses[kind][str(answer.status)] += 1
                except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                    statuses[kind][type(exc).__name__] += 1
                finally:
                    writer.transport.abort()

        probes: list[tuple[int, float]] = []
        rss_samples: list[float] = []

        def prober() -> None:
            host, port = host_port(gateway.url)
            for _ in range(int(SECONDS / PROBE_EVERY) + 4):
                if stop.is_set():
                    return
                tick = time.monotonic()
                probes.append(_probe_once(host, port))
                rss_samples.append(rss_mib(pid))
                time.sleep(max(0.0, PROBE_EVERY - (time.monotonic() - tick)))

        probe_thread = threading.Thread(target=prober, daemon=True)
        probe_thread.start()
        try:
            async with asyncio.timeout(SECONDS + 30):
                await asyncio.gather(
                    *(sender("bomb", bomb_request) for _ in range(SENDERS)),
                    *(sender("big", big_request) for _ in range(SENDERS)),
                )
        finally:
            stop.set()
            await asyncio.to_thread(probe_thread.join, PROBE_TIMEOUT + 1)

        assert gateway.proc.poll() is None, "the gateway exited"
        hwm_after = peak_rss_mib(pid)
        latencies = [seconds for _, seconds in probes]
        failed = [(status, round(s, 3)) for status, s in probes if status != 200 or s > PROBE_BOUND]
        peak_rss = max(rss_samples, default=0.0)
        print(
            f"{SECONDS:.0f} s, {SENDERS} bomb senders (1 GiB inflated, {len(bomb):,} bytes sent)"
            f" and {SENDERS} senders of {BODY_MIB} MiB bodies from a blocked account's key"
        )
        print(f"bombs sent {sent['bomb']}, answers {dict(statuses['bomb'])}")
        print(f"big bodies sent {sent['big']}, answers {dict(statuses['big'])}")
        print(
            f"/healthz probes {len(probes)}: max {max(latencies, default=0) * 1000:.1f} ms,"
            f" p99 {percentile(latencies, 0.99) * 1000:.1f} ms,"
            f" p50 {percentile(latencies, 0.5) * 1000:.1f} ms; failed or slow: {failed}"
        )
        print(
            f"RSS {rss_before:.1f} MiB before, peak sampled {peak_rss:.1f} MiB;"
            f" VmHWM {hwm_before:.1f} -> {hwm_after:.1f} MiB"
        )
        assert len(probes) >= int(SECONDS / PROBE_EVERY) - 2
        assert not failed
        assert sent["bomb"] >= SENDERS and sent["big"] >= SENDERS
        assert set(statuses["bomb"]) <= {"401"}, statuses["bomb"]
        assert set(statuses["big"]) <= {"429"}, statuses["big"]
        assert peak_rss * 1.048576 < RSS_BOUND_MB and hwm_after * 1.048576 < RSS_BOUND_MB
    finally:
        await asyncio.to_thread(gateway.stop)

"""Checks that need no body come before it is read: a blocked account, a full request-rate
window or a full concurrency limit refuses a large body without the gateway reading it, so a
refused caller cannot spend the process's memory; what arrives after the answer is
discarded as it comes, never held."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.support.gateway import ADMIN_TOKEN, GatewayProcess, gateway_env
from tests.support.rawhttp import connect, read_answer

BODY_MIB = 27


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def _big_body() -> bytes:
    text = "x" * (BODY_MIB * 1024 * 1024 - 200)
    return orjson.dumps({"model": "local/echo", "messages": [{"role": "user", "content": text}]})


async def _admin(http: aiohttp.ClientSession, url: str, method: str, path: str, body=None):
    async with http.request(
        method,
        f"{url}/admin/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as resp:
        assert resp.status < 300, await resp.text()
        return await resp.json()


async def _tenant(http: aiohttp.ClientSession, url: str, quota: dict | None = None) -> tuple:
    account = f"acct_big_{id(quota)}_{len(str(quota))}"
    await _admin(http, url, "POST", "/accounts", {"id": account})
    key = await _admin(http, url, "POST", "/keys", {"account": account})
    if quota:
        await _admin(http, url, "PUT", f"/keys/{key['id']}/quota", quota)
    return account, key["key"]


async def _send_big(url: str, key: str, body: bytes, chunked: bool = False):
    """Send a large body and read the answer the gateway gives (before it has read it all)."""
    reader, writer = await connect(url)
    try:
        head = [
            "POST /v1/chat/completions HTTP/1.1",
            "Host: localhost",
            f"Authorization: Bearer {key}",
            "Content-Type: application/json",
        ]
        head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        payload = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n" if chunked else body
        writer.write(payload)  # buffered on our side; the gateway reads only what it wants
        return await read_answer(reader, timeout=30)  # bounds the test's own run time
    finally:
        writer.transport.abort()


@pytest.fixture
def process(fake):
    proc = GatewayProcess(gateway_env("memory://", fake.url)).start()
    yield proc
    proc.stop()


async def test_a_blocked_account_s_large_bodies_are_refused_unread(process) -> None:
    assert process.proc is not None
    async with aiohttp.ClientSession() as http:
        account, key = await _tenant(http, process.url)
        await _admin(http, process.url, "POST", f"/accounts/{account}/block", {})
    body = _big_body()
    before = _memory_kib(process.proc.pid, "VmHWM")
    answers = await asyncio.gather(*(_send_big(process.url, key, body) for _ in range(3)))
    peak = _memory_kib(process.proc.pid, "VmHWM")
    for answer in answers:
        assert answer.status == 429 and b"blocked" in answer.body
    rise_mb = (peak - before) / 1024
    print(f"peak RSS rise, three {BODY_MIB} MiB bodies from a blocked account: {rise_mb:.1f} MB")
    assert rise_mb < 100


async def test_a_full_rate_window_refuses_a_large_body_unread(process) -> None:
    assert process.proc is not None
    async with aiohttp.ClientSession() as http:
        _, key = await _tenant(http, process.url, {"requests_per_minute": 1})
        async with http.post(
            f"{process.url}/v1/chat/completions",
            json={"model": "local/echo", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {key}"},
        ) as resp:
            assert resp.status == 200
    body = _big_body()
    before = _memory_kib(process.proc.pid, "VmHWM")
    for chunked in (False, True):
        answer = await _send_big(process.url, key, body, chunked=chunked)
        assert answer.status == 429, answer.body
        assert orjson.loads(answer.body)["error"]["code"] == "REQUEST_LIMIT_EXCEEDED"
        assert "retry-after" in answer.headers
    rise_mb = (_memory_kib(process.proc.pid, "VmHWM") - before) / 1024
    print(f"peak RSS rise with two {BODY_MIB} MiB bodies over a full window: {rise_mb:.1f} MB")
    assert rise_mb < 60


async def test_a_small_body_still_gets_the_exact_decision(process) -> None:
    # Small bodies skip the read-only check: the reservation refuses them as before.
    async with aiohttp.ClientSession() as http:
        _, key = await _tenant(http, process.url, {"requests_per_minute": 2})
        statuses = []
        for _ in range(3):
            async with http.post(
                f"{process.url}/v1/chat/completions",
                json={"model": "local/echo", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": f"Bearer {key}"},
            ) as resp:
                statuses.append(resp.status)
    assert statuses == [200, 200, 429]

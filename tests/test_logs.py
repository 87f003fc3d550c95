"""JSON logs of a real `edge serve`: startup and shutdown lines, one line per request with its
fields, and never a secret or a prompt."""

from __future__ import annotations

import json
import signal

import aiohttp

from edge.server import GC_THRESHOLDS
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import (
    ADMIN_TOKEN,
    HMAC_SECRET,
    UPSTREAM_SECRET,
    GatewayProcess,
    Live,
    gateway_env,
)

PROMPT = "my-very-private-prompt-text"
REQUEST_FIELDS = {
    "request_id",
    "account",
    "key_id",
    "branch",
    "model",
    "provider",
    "status",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "ttfb_ms",
    "route",
    "method",
}
CHUNKS = [
    b'data: {"id":"c","object":"chat.completion.chunk",'
    b'"choices":[{"index":0,"delta":{"content":"ok"}}]}\n\n',
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[],'
    b'"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}\n\n',
    b"data: [DONE]\n\n",
]


def lines(proc: GatewayProcess) -> list[dict[str, object]]:
    """Every log line, each of which must be a JSON object."""
    return [json.loads(line) for line in proc.log.read_text().splitlines() if line.strip()]


async def run_load(proc: GatewayProcess, fake: FakeUpstream) -> str:
    async with aiohttp.ClientSession() as http:
        tenant = await Live(url=proc.url, http=http).tenant()
        fake.push(Scenario(frames=CHUNKS))
        async with http.post(
            f"{proc.url}/v1/chat/completions",
            json={
                "model": "gpt-5-4",
                "stream": True,
                "messages": [{"role": "user", "content": PROMPT}],
            },
            headers={"Authorization": f"Bearer {tenant.key}", "x-request-id": "req-log-test-1"},
        ) as resp:
            assert resp.status == 200
            await resp.read()
        return tenant.key


async def test_request_line_has_the_fields_and_no_secret(fake: FakeUpstream) -> None:
    env = gateway_env("memory://", fake.url, EDGE_LOG_LEVEL="info", EDGE_SHUTDOWN_GRACE="0")
    proc = GatewayProcess(env).start()
    try:
        key = await run_load(proc, fake)
        proc.signal(signal.SIGTERM)
        assert proc.proc is not None and proc.proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    records = lines(proc)
    messages = [r["msg"] for r in records]
    for expected in ("starting", "listening", "signal received", "draining", "stopped"):
        assert expected in messages, messages
    start = next(r for r in records if r["msg"] == "starting")
    assert start["store"] == "memory://" and start["pid"]
    # Start-up's objects are frozen out of the collector's full passes.
    listening = next(r for r in records if r["msg"] == "listening")
    assert listening["gc_frozen"] > 10_000, listening
    # Young collections far apart: each would walk every in-flight request's objects.
    assert listening["gc_thresholds"] == list(GC_THRESHOLDS)
    line = next(r for r in records if r.get("request_id") == "req-log-test-1")
    assert set(line) >= REQUEST_FIELDS
    assert line["status"] == 200 and line["model"] == "gpt-5-4" and line["provider"] == "openai"
    assert line["input_tokens"] == 5 and line["output_tokens"] == 1
    assert line["key_id"] and line["account"] and line["branch"] == "br-main"
    assert line["route"] == "/v1/chat/completions" and line["stream"] is True
    assert isinstance(line["ttfb_ms"], float) and line["latency_ms"] >= line["ttfb_ms"]
    text = proc.log.read_text()
    for secret in (key, ADMIN_TOKEN, HMAC_SECRET, UPSTREAM_SECRET, PROMPT):
        assert secret not in text


async def test_log_level_warning_writes_no_request_lines(fake: FakeUpstream) -> None:
    env = gateway_env("memory://", fake.url, EDGE_LOG_LEVEL="WARNING", EDGE_SHUTDOWN_GRACE="0")
    proc = GatewayProcess(env).start()
    try:
        await run_load(proc, fake)
    finally:
        assert proc.stop() == 0
    assert not [r for r in lines(proc) if r["msg"] == "request"]

"""Chat Completions to an OpenAI-compatible upstream: bytes unchanged, usage recorded."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.support.clock import Deadline
from tests.support.fake_upstream import Scenario
from tests.support.gateway import UPSTREAM_SECRET
from tests.support.recordings import Recording, recordings

CHAT = recordings("openai-chat")


def _expected_usage(rec: Recording) -> tuple[int, int]:
    if rec.streamed:
        usages = [e["usage"] for e in rec.events() if e.get("usage")]
        usage = usages[-1] if usages else {}
    else:
        usage = rec.body().get("usage") or {}
    return usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)


async def _usage_today(gateway, key_id: str, expect: tuple[int, int]) -> tuple[int, int]:
    # Usage settles when the handler returns, which for a stream is just after the last byte.
    deadline = Deadline(10)
    while True:
        status, body = await gateway.admin("GET", f"/keys/{key_id}/usage")
        assert status == 200
        got = (body["today"]["input_tokens"], body["today"]["output_tokens"])
        if got == expect or deadline.passed():
            return got
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("rec", CHAT, ids=lambda r: r.name)
async def test_recording_passes_through_unchanged(gateway, fake, rec: Recording) -> None:
    tenant = await gateway.tenant()
    status = 400 if "error" in rec.name else 200
    fake.push(Scenario(recording=rec, status=status))
    body = {"model": "gpt-5-4", "messages": [{"role": "user", "content": "hi"}]}
    if rec.streamed:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    async with gateway.http.post(
        f"{gateway.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as resp:
        received = await resp.read()
        assert resp.status == status
    assert received == rec.wire()
    seen = fake.requests[-1]
    assert seen.path == "/v1/chat/completions"
    assert seen.body["model"] == "gpt-5.4"  # the catalog's upstream name
    assert seen.headers["Authorization"] == f"Bearer {UPSTREAM_SECRET}"
    assert tenant.key not in seen.raw.decode() + str(seen.headers)
    if status == 200:
        expect = _expected_usage(rec)
        assert await _usage_today(gateway, tenant.key_id, expect) == expect


async def test_usage_asked_for_by_the_gateway_is_kept_from_the_client(gateway, fake) -> None:
    """A stream without include_usage: the gateway asks for usage and hides the extra chunk."""
    rec = next(r for r in CHAT if r.name == "openai-text.chunks.txt")
    tenant = await gateway.tenant()
    fake.push(Scenario(recording=rec))
    async with gateway.http.post(
        f"{gateway.url}/ai-gateway/mlflow/v1/chat/completions",
        json={
            "model": "openai/gpt-5.4",
            "stream": True,
            "messages": [{"role": "user", "content": "x"}],
        },
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as resp:
        received = await resp.read()
    assert fake.requests[-1].body["stream_options"] == {"include_usage": True}
    frames = rec.frames()
    usage_frame = next(f for f in frames if b'"choices":[]' in f)
    assert received == b"".join(f for f in frames if f is not usage_frame)
    expect = _expected_usage(rec)
    assert await _usage_today(gateway, tenant.key_id, expect) == expect


async def test_non_stream_body_rewrites_only_the_model(gateway, fake) -> None:
    rec = next(r for r in CHAT if r.name == "openai-text.json")
    tenant = await gateway.tenant()
    fake.push(Scenario(recording=rec))
    raw = (
        b'{"messages": [{"role": "user", "content": "caf\\u00e9 \\"model\\": \\"gpt-5-4\\""}],'
        b' "model": "gpt-5-4", "temperature": 0.5}'
    )
    async with gateway.http.post(
        f"{gateway.url}/v1/chat/completions",
        data=raw,
        headers={"Authorization": f"Bearer {tenant.key}", "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 200
    sent = orjson.loads(fake.requests[-1].raw)
    assert sent == {**orjson.loads(raw), "model": "gpt-5.4"}

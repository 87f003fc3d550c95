"""Quotas see the provider's real tokens whatever the pair: relayed or translated, stream or
not, the usage recorded for the key is the recording's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.support.clock import Deadline
from tests.support.expected import expected
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.matrix import PROVIDER_MODELS, call, request_for
from tests.support.recordings import Recording, recordings

CASES = [
    ("anthropic", "anthropic-message-delta-input-tokens.chunks.txt", "messages"),
    ("anthropic", "anthropic-message-delta-input-tokens.chunks.txt", "gemini"),
    ("anthropic", "anthropic-clear-thinking.1.json", "chat"),
    ("gemini", "google-reasoning.chunks.txt", "gemini"),
    ("gemini", "google-reasoning.chunks.txt", "messages"),
    ("gemini", "google-text.json", "chat"),
    ("openai-chat", "deepseek-reasoning.chunks.txt", "messages"),
    ("openai-chat", "deepseek-tool-call.json", "gemini"),
]


@pytest.fixture
async def gw(fake: FakeUpstream) -> AsyncIterator[Live]:
    """A gateway on the embedded store."""
    live = await start_live(settings_for(gateway_env("memory://", fake.url)))
    yield live
    await stop_live(live)


def _recording(api: str, name: str) -> Recording:
    return next(r for r in recordings(api) if r.name == name)  # type: ignore[arg-type]


async def _recorded(gw: Live, key_id: str, want: tuple[int, int]) -> tuple[int, int]:
    # Usage settles just after the handler returns: poll, bounded.
    deadline = Deadline(10)
    while True:
        status, body = await gw.admin("GET", f"/keys/{key_id}/usage")
        assert status == 200
        got = (body["today"]["input_tokens"], body["today"]["output_tokens"])
        if got == want or deadline.passed():
            return got
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(("provider", "name", "api"), CASES, ids=[f"{c[1]}->{c[2]}" for c in CASES])
async def test_recorded_usage_is_the_providers(
    gw: Live, fake: FakeUpstream, provider: str, name: str, api: str
) -> None:
    rec = _recording(provider, name)
    exp = expected(rec)
    tenant = await gw.tenant()
    fake.push(Scenario(recording=rec))
    path, body = request_for(api, PROVIDER_MODELS[provider], "hi", stream=rec.streamed)
    out = await call(gw, tenant.key, api, path, body)
    assert out.status == 200 and out.answer is not None and out.answer.error is None
    want = (exp.usage.input, exp.usage.output)
    assert want != (0, 0)
    assert await _recorded(gw, tenant.key_id, want) == want

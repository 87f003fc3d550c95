"""Fallback models: tried on 429, 5xx, connection failure or timeout before the first byte,
never after; the answer names the model that gave it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge.errors import GatewayError
from edge.fallback import fallback_chain, requested_fallbacks
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.matrix import call, request_for
from tests.support.ports import free_port
from tests.support.recordings import recordings

CHAT = {r.name: r for r in recordings("openai-chat")}
ANTHROPIC = {r.name: r for r in recordings("anthropic")}
GEMINI = {r.name: r for r in recordings("gemini")}
PRIMARY, SECONDARY = "claude-sonnet-4-6", "databricks-qwen35-122b-a10b"
LIMITED = b'{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}'
OPTIONS = {"providerOptions": {"gateway": {"models": [SECONDARY]}}}


def _config(dead_port: int) -> str:
    # A model on an unreachable provider, and one whose catalog chain falls back to Gemini.
    return f"""
[catalog.providers.dead]
kind = "openai-compatible"
apis = ["chat"]
base_url = "http://127.0.0.1:{dead_port}/v1"

[[catalog.models]]
id = "dead-model"
provider = "dead"
fallbacks = ["{SECONDARY}"]

[[catalog.models]]
id = "chained-claude"
provider = "anthropic"
upstream = "claude-sonnet-4-6"
fallbacks = ["gemini-2-5-flash"]
"""


@pytest.fixture
async def gw(fake: FakeUpstream, tmp_path: Path) -> AsyncIterator[Live]:
    """A gateway with a short upstream timeout and the test catalog above."""
    config = tmp_path / "edge.toml"
    config.write_text(_config(free_port()))
    env = gateway_env("memory://", fake.url, EDGE_CONFIG=str(config), EDGE_UPSTREAM_TIMEOUT="0.5")
    live = await start_live(settings_for(env))
    yield live
    await stop_live(live)


async def _chat(gw: Live, model: str, stream: bool = False, **extra: Any) -> Any:
    tenant = await gw.tenant()
    path, body = request_for("chat", model, "hello", stream=stream, **extra)
    return await call(gw, tenant.key, "chat", path, body)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_primary_429_then_secondary_answers(
    gw: Live, fake: FakeUpstream, stream: bool
) -> None:
    rec = CHAT["openai-text.chunks.txt" if stream else "openai-text.json"]
    fake.push(
        Scenario(status=429, body=LIMITED, headers={"retry-after": "30"}),
        Scenario(recording=rec),
    )
    out = await _chat(gw, PRIMARY, stream, **OPTIONS)
    assert out.status == 200
    assert out.headers["x-edge-model"] == SECONDARY
    assert "retry-after" not in out.headers  # the failed attempt's headers are not the answer's
    assert out.answer.model == "gpt-4.1-nano-2025-04-14"  # the model that answered
    assert [r.path for r in fake.requests] == ["/v1/messages", "/v1/chat/completions"]
    assert "providerOptions" not in fake.requests[1].body


@pytest.mark.parametrize("status", [500, 503, 529])
async def test_primary_5xx_then_secondary(gw: Live, fake: FakeUpstream, status: int) -> None:
    fake.push(Scenario(status=status, body=b"{}"), Scenario(recording=CHAT["openai-text.json"]))
    out = await _chat(gw, PRIMARY, **OPTIONS)
    assert (out.status, out.headers["x-edge-model"]) == (200, SECONDARY)


async def test_connection_failure_falls_back_by_catalog_chain(gw: Live, fake: FakeUpstream) -> None:
    fake.push(Scenario(recording=CHAT["openai-text.json"]))
    out = await _chat(gw, "dead-model")
    assert (out.status, out.headers["x-edge-model"]) == (200, SECONDARY)
    assert len(fake.requests) == 1


async def test_timeout_before_headers_falls_back(gw: Live, fake: FakeUpstream) -> None:
    fake.push(Scenario(delay_headers=5), Scenario(recording=CHAT["openai-text.json"]))
    out = await _chat(gw, PRIMARY, **OPTIONS)
    assert (out.status, out.headers["x-edge-model"]) == (200, SECONDARY)


async def test_failure_after_first_byte_ends_with_terminal_error_and_no_fallback(
    gw: Live, fake: FakeUpstream
) -> None:
    rec = ANTHROPIC["anthropic-text.chunks.txt"]
    fake.push(Scenario(recording=rec, reset_after=3), Scenario(recording=CHAT["openai-text.json"]))
    out = await _chat(gw, PRIMARY, stream=True, **OPTIONS)
    assert out.status == 200
    assert out.headers["x-edge-model"] == PRIMARY
    assert out.answer.error is not None and out.answer.error["code"] == "upstream_interrupted"
    assert len(fake.requests) == 1


async def test_client_errors_are_not_retried(gw: Live, fake: FakeUpstream) -> None:
    bad = b'{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}'
    fake.push(Scenario(status=400, body=bad), Scenario(recording=CHAT["openai-text.json"]))
    out = await _chat(gw, PRIMARY, **OPTIONS)
    assert out.status == 400
    assert len(fake.requests) == 1


async def test_last_failure_is_the_answer(gw: Live, fake: FakeUpstream) -> None:
    fake.push(
        Scenario(status=429, body=LIMITED),
        Scenario(status=429, body=b'{"error":{"message":"Slow"}}', headers={"retry-after": "9"}),
    )
    out = await _chat(gw, PRIMARY, **OPTIONS)
    assert out.status == 429
    assert out.headers["retry-after"] == "9"
    assert out.headers["x-edge-model"] == SECONDARY


async def test_messages_client_falls_back_across_providers(gw: Live, fake: FakeUpstream) -> None:
    """The catalog chain of `chained-claude` ends at Gemini; the client still gets Messages."""
    rec = GEMINI["google-text.chunks.txt"]
    fake.push(Scenario(status=529, body=b"{}"), Scenario(recording=rec))
    tenant = await gw.tenant()
    path, body = request_for("messages", "chained-claude", "hello", stream=True)
    out = await call(gw, tenant.key, "messages", path, body)
    assert (out.status, out.headers["x-edge-model"]) == (200, "gemini-2-5-flash")
    assert out.answer.model == "gemini-3-pro-preview"
    assert out.answer.text.startswith("There are **3**")


async def test_gemini_client_falls_back(gw: Live, fake: FakeUpstream) -> None:
    fake.push(
        Scenario(recording=GEMINI["google-429-retry-info.json"], status=429),
        Scenario(recording=ANTHROPIC["anthropic-text.json"]),
    )
    tenant = await gw.tenant()
    extra = {"providerOptions": {"gateway": {"models": [PRIMARY]}}}
    path, body = request_for("gemini", "gemini-2-5-flash", "hello", stream=False, **extra)
    out = await call(gw, tenant.key, "gemini", path, body)
    assert (out.status, out.headers["x-edge-model"]) == (200, PRIMARY)
    assert "providerOptions" not in fake.requests[0].body


async def test_invalid_fallback_lists_are_400(gw: Live, fake: FakeUpstream) -> None:
    out = await _chat(gw, PRIMARY, providerOptions={"gateway": {"models": "gpt-5-4"}})
    assert out.status == 400 and "providerOptions.gateway.models" in out.error["error"]["message"]
    out = await _chat(gw, PRIMARY, providerOptions={"gateway": {"models": ["nope"]}})
    assert (out.status, out.error["error"]["code"]) == (400, "invalid_model")
    assert fake.requests == []


def test_chain_order_and_dedup() -> None:
    settings = settings_for(gateway_env("memory://", "http://127.0.0.1:9"))
    payload = {"providerOptions": {"gateway": {"models": [PRIMARY, "gpt-5-4", "openai/gpt-5.4"]}}}
    chain = fallback_chain(settings.catalog, PRIMARY, payload, "chat")
    assert [r.model.id for r in chain] == [PRIMARY, "gpt-5-4"]
    assert requested_fallbacks({}) == []
    with pytest.raises(GatewayError):
        requested_fallbacks({"providerOptions": {"gateway": {"models": [1]}}})

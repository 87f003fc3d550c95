"""/metrics after a test load: it parses as Prometheus text and shows every series, with
bounded labels (route patterns, never raw paths or key ids)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.appkeys import METRICS
from edge.errors import GatewayError
from edge.metrics import quota_limit, upstream_kind
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live

FAMILIES = {
    "edge_requests": "counter",
    "edge_request_duration_seconds": "histogram",
    "edge_time_to_first_byte_seconds": "histogram",
    "edge_tokens": "counter",
    "edge_quota_denials": "counter",
    "edge_upstream_errors": "counter",
    "edge_open_streams": "gauge",
    "edge_store_fallbacks": "counter",
    "edge_draining": "gauge",
}
STREAM = [
    b'data: {"id":"c","object":"chat.completion.chunk",'
    b'"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n',
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[],'
    b'"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}\n\n',
    b"data: [DONE]\n\n",
]


class Fallbacks:
    """A stand-in for a component that counts store fallbacks."""

    def __init__(self) -> None:
        self.counts = {"rate_local": 0, "settle_lost": 0}

    def fallback_counts(self) -> Mapping[str, int]:
        return self.counts


async def scrape(live: Live, token: str | None = None) -> dict[str, Any]:
    """Families by name, from the text parser."""
    assert live.http is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with live.http.get(f"{live.url}/metrics", headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(families: dict[str, Any], name: str, sample: str | None = None) -> list[Any]:
    return [s for s in families[name].samples if sample is None or s.name == sample]


async def chat(live: Live, key: str, model: str, stream: bool = False) -> int:
    assert live.http is not None
    async with live.http.post(
        f"{live.url}/v1/chat/completions",
        json={"model": model, "stream": stream, "messages": [{"role": "user", "content": "a b"}]},
        headers={"Authorization": f"Bearer {key}"},
    ) as resp:
        await resp.read()
        return resp.status


async def test_metrics_after_a_load(gateway: Live, fake: FakeUpstream) -> None:
    assert gateway.app is not None and gateway.http is not None
    source = Fallbacks()
    gateway.app[METRICS].watch_fallbacks(source)
    tenant = await gateway.tenant()
    for _ in range(3):
        assert await chat(gateway, tenant.key, "local/echo") == 200
    assert await chat(gateway, tenant.key, "local/echo", stream=True) == 200
    fake.push(Scenario(frames=STREAM))
    assert await chat(gateway, tenant.key, "gpt-5-4", stream=True) == 200
    fake.push(Scenario(status=500, body=b'{"error":{"message":"boom"}}'))
    assert await chat(gateway, tenant.key, "gpt-5-4") == 502
    async with gateway.http.get(f"{gateway.url}/v1/raw/path/{tenant.key_id}") as resp:
        assert resp.status in (401, 404)
    limited = await gateway.tenant(quota={"requests_per_minute": 1})
    assert await chat(gateway, limited.key, "local/echo") == 200
    assert await chat(gateway, limited.key, "local/echo") == 429
    source.counts["rate_local"] = 2

    families = await scrape(gateway)
    for name, kind in FAMILIES.items():
        assert families[name].type == kind, name

    counts = {
        (s.labels["route"], s.labels["model"], s.labels["status"]): s.value
        for s in samples(families, "edge_requests", "edge_requests_total")
    }
    assert counts[("/v1/chat/completions", "local/echo", "200")] == 5
    assert counts[("/v1/chat/completions", "gpt-5-4", "502")] == 1
    assert counts[("/v1/chat/completions", "none", "429")] == 1
    labels = {v for s in samples(families, "edge_requests") for v in s.labels.values()}
    assert not any(tenant.key_id in v or "/raw/" in v for v in labels)
    assert "unmatched" in labels

    tokens = {
        (s.labels["account"], s.labels["model"], s.labels["direction"]): s.value
        for s in samples(families, "edge_tokens", "edge_tokens_total")
    }
    assert tokens[(tenant.account, "gpt-5-4", "input")] == 7
    assert tokens[(tenant.account, "gpt-5-4", "output")] == 3
    assert tokens[(tenant.account, "local/echo", "output")] > 0

    errors = {
        (s.labels["provider"], s.labels["kind"]): s.value
        for s in samples(families, "edge_upstream_errors", "edge_upstream_errors_total")
    }
    assert errors == {("openai", "error"): 1.0}
    denials = samples(families, "edge_quota_denials", "edge_quota_denials_total")
    assert sum(s.value for s in denials) == 1 and denials[0].labels["limit"]
    ttfb = samples(
        families, "edge_time_to_first_byte_seconds", "edge_time_to_first_byte_seconds_count"
    )
    assert sum(s.value for s in ttfb) >= 6
    fallbacks = {
        s.labels["kind"]: s.value
        for s in samples(families, "edge_store_fallbacks", "edge_store_fallbacks_total")
    }
    # The stand-in's counts (the gateway's own components may add kinds of their own, at 0).
    assert fallbacks["rate_local"] == 2 and fallbacks["settle_lost"] == 0
    assert all(s.value == 0 for s in samples(families, "edge_open_streams"))


async def test_open_streams_gauge_follows_a_stream(gateway: Live, fake: FakeUpstream) -> None:
    """One stream held open shows as 1 on its route, and 0 once the client leaves."""
    assert gateway.http is not None
    tenant = await gateway.tenant()
    fake.push(Scenario(endless=True, delay_chunks=0.02))
    async with gateway.http.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt-5-4", "stream": True, "messages": [{"role": "user", "content": "x"}]},
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as resp:
        await resp.content.readany()
        families = await scrape(gateway)
        open_now = {s.labels["route"]: s.value for s in samples(families, "edge_open_streams")}
        assert open_now == {"/v1/chat/completions": 1.0}
    for _ in range(100):  # the handler notices the disconnect within a few loop turns
        families = await scrape(gateway)
        if all(s.value == 0 for s in samples(families, "edge_open_streams")):
            break
        await asyncio.sleep(0.02)
    assert all(s.value == 0 for s in samples(families, "edge_open_streams"))


async def test_metrics_token_protects_the_scrape(fake: FakeUpstream) -> None:
    token = "metrics-token-0123456789abcdef"
    live = await start_live(
        settings_for(gateway_env("memory://", fake.url, EDGE_METRICS_TOKEN=token))
    )
    try:
        assert live.http is not None
        async with live.http.get(f"{live.url}/metrics") as resp:
            assert resp.status == 401
        async with live.http.get(
            f"{live.url}/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}
        ) as resp:
            assert resp.status == 401
        assert "edge_requests" in await scrape(live, token)
    finally:
        await stop_live(live)


@pytest.mark.parametrize(
    ("err", "provider", "kind"),
    [
        (GatewayError(504, "t", code="upstream_timeout"), "openai", "timeout"),
        (GatewayError(502, "u", code="upstream_unreachable"), "openai", "unreachable"),
        (GatewayError(502, "x", code="upstream_something_new"), "openai", "other"),
        (GatewayError(429, "r", code="rate_limit_exceeded"), "anthropic", "rate_limited"),
        (GatewayError(429, "q", code="REQUEST_LIMIT_EXCEEDED"), "openai", None),
        (GatewayError(400, "b", code="invalid_model"), None, None),
    ],
)
def test_upstream_kinds_are_a_closed_set(
    err: GatewayError, provider: str | None, kind: str | None
) -> None:
    assert upstream_kind(err, provider) == kind


def test_quota_limit_names_the_policy() -> None:
    denial = GatewayError(
        429, "x", code="REQUEST_LIMIT_EXCEEDED", headers={"RateLimit-Policy": '"key-rpm";q=1;w=60'}
    )
    assert quota_limit(denial) == "key-rpm"
    assert quota_limit(GatewayError(429, "blocked", code="REQUEST_LIMIT_EXCEEDED")) == "blocked"
    odd = GatewayError(429, "x", headers={"RateLimit-Policy": '"a b c/../";q=1'})
    assert quota_limit(odd) == "blocked"

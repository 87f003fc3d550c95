"""Logs and metrics that answer "why": a refusal's access-log line names the limit that fired
(its scope and window), a fallback's line names each attempt and its outcome, and /metrics counts
refusals by reason, fallback attempts and cost per account (with a bounded account label)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from edge.metrics import OTHER, BoundedLabel
from policies.ratelimit import policy_of
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import GatewayProcess, Live, gateway_env
from tests.support.recordings import recordings

CHAT = {r.name: r for r in recordings("openai-chat")}
LIMITED = b'{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}'
PRIMARY, SECONDARY = "claude-sonnet-4-6", "databricks-qwen35-122b-a10b"


def test_a_bounded_label_keeps_its_first_values_and_folds_the_rest() -> None:
    label = BoundedLabel(2)
    assert [label("a"), label("b"), label("c"), label("a")] == ["a", "b", OTHER, "a"]
    assert BoundedLabel(5)("has space") == OTHER  # not a plain token


def test_the_policy_header_is_read_back() -> None:
    assert policy_of('"key-rpm";q=10;w=60') == ("key-rpm", 60)
    assert policy_of("") is None and policy_of('"x";q=1') is None


async def _post(
    http: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any], rid: str
) -> int:
    headers = {"Authorization": f"Bearer {key}", "x-request-id": rid}
    async with http.post(f"{url}/v1/chat/completions", json=body, headers=headers) as resp:
        await resp.read()
        return resp.status


def _chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


async def test_refusals_and_fallbacks_say_why_in_logs_and_metrics(fake: FakeUpstream) -> None:
    env = gateway_env("memory://", fake.url, EDGE_LOG_LEVEL="info")
    proc = GatewayProcess(env).start()
    try:
        async with aiohttp.ClientSession() as http:
            live = Live(url=proc.url, http=http)
            limited = await live.tenant(quota={"requests_per_minute": 1})
            assert await _post(http, proc.url, limited.key, _chat("local/echo"), "ok-1") == 200
            assert await _post(http, proc.url, limited.key, _chat("local/echo"), "denied") == 429
            fenced = await live.tenant()
            status, _ = await live.admin(
                "PUT", f"/accounts/{fenced.account}/quota", {"deny_models": ["gpt-*"]}
            )
            assert status == 200
            assert await _post(http, proc.url, fenced.key, _chat("gpt-5-4"), "fenced") == 403
            fake.push(
                Scenario(status=429, body=LIMITED), Scenario(recording=CHAT["openai-text.json"])
            )
            options = {"providerOptions": {"gateway": {"models": [SECONDARY]}}}
            body = _chat(PRIMARY, **options)
            assert await _post(http, proc.url, fenced.key, body, "fell-back") == 200
            async with http.get(f"{proc.url}/metrics") as resp:
                text = await resp.text()
    finally:
        proc.stop()
    by_id = {}
    for raw in proc.log.read_text().splitlines():
        line = json.loads(raw)
        if line.get("msg") == "request":
            by_id[line["request_id"]] = line
    denied = by_id["denied"]
    assert denied["error"] == "REQUEST_LIMIT_EXCEEDED"
    assert (denied["limit"], denied["limit_scope"], denied["limit_window_s"]) == (
        "key-rpm",
        "key",
        60,
    )
    assert "limit" not in by_id["ok-1"] and "error" not in by_id["ok-1"]
    assert by_id["fenced"]["error"] == "model_not_allowed"
    assert by_id["fell-back"]["attempts"] == [f"{PRIMARY}:429", f"{SECONDARY}:200"]

    families = {f.name: f for f in text_string_to_metric_families(text)}

    def value(name: str, **labels: str) -> float:
        return sum(
            s.value
            for s in families[name].samples
            if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items())
        )

    assert value("edge_refusals", reason="model_not_allowed") == 1
    assert value("edge_refusals", reason="REQUEST_LIMIT_EXCEEDED") == 1
    assert value("edge_fallback_attempts", model=PRIMARY, outcome="429") == 1
    assert value("edge_fallback_attempts", model=SECONDARY, outcome="200") == 1
    assert value("edge_cost_usd", account=fenced.account) > 0  # the recording's usage, priced
    assert value("edge_cost_usd", account=limited.account) == 0  # local/echo costs nothing

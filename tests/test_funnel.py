"""One funnel: every route that can reach a model is declared once with its facts, admitted and
settled; whatever the prefix, the id style or the spelling, a limit of N admits exactly N calls,
every admitted call is in the usage read-back, and a blocked account gets none."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from edge.context import RequestContext
from edge.errors import GatewayError
from edge.handlers import chat, count_tokens, embeddings, gemini, messages, responses
from edge.partial_usage import charge_cut_stream
from edge.quota.reservation import Reservation
from edge.route_table import ROUTE_FACTS, target_methods
from edge.settings import Timeouts
from edge.upstream.client import open_upstream
from policies.quota import Rules
from tests.support.clock import Deadline
from tests.support.fake_upstream import Scenario
from tests.support.gateway import Live
from tests.support.recordings import recordings

MODEL_HANDLERS = {
    chat.chat_completions,
    responses.create_response,
    messages.messages,
    gemini.generate,
    count_tokens.count_message_tokens,
    count_tokens.count_gemini_tokens,
    embeddings.create_embeddings,
    embeddings.gemini_embed,
}
# The catalog's spellings of the in-process model, and the ways a path may carry them.
BODY_SPELLINGS = ("local/echo", "echo", "local-echo", "LOCAL/Echo")
PATH_SPELLINGS = ("local/echo", "echo", "local-echo", quote("local/echo", safe=""))


def _templates(route: AbstractRoute) -> list[str]:
    """A route's path templates: a Gemini `{target}` route gives one per method it serves
    (`.../{model}:countTokens`), read from its own pattern."""
    assert route.resource is not None
    canonical = route.resource.canonical
    methods = target_methods(route.resource)
    if not methods:
        return [canonical]
    return [canonical.replace("{target}", f"{{model}}:{method}") for method in methods]


def _model_routes(app: web.Application) -> list[tuple[str, str]]:
    """(endpoint, path template) of every declared route that calls a model, one per method."""
    table = app[ROUTE_FACTS]
    return sorted(
        (facts.endpoint or "", template)
        for route, facts in table.items()
        if facts.calls_model and route.resource is not None
        for template in _templates(route)
    )


def _spellings(template: str) -> tuple[str, ...]:
    return PATH_SPELLINGS if "{model}" in template else BODY_SPELLINGS


def _call(endpoint: str, template: str, model: str) -> tuple[str, dict[str, Any]]:
    """A concrete (path, body) for a model route."""
    text = {"parts": [{"text": "hi"}]}
    if "{model}" in template:  # the model in the path, the method after it
        path = template.replace("{model}", model)
        method = template.rsplit(":", 1)[1]
        if method == "embedContent":
            return path, {"content": text}
        if method == "batchEmbedContents":
            return path, {"requests": [{"content": text}]}
        return path, {"contents": [{"role": "user", **text}]}
    if endpoint == "chat":
        return template, {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if endpoint == "messages":  # Messages, and its count_tokens
        body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
        if template.endswith("/count_tokens"):
            del body["max_tokens"]
        return template, body
    return template, {"model": model, "input": "hi"}  # Responses, embeddings


async def _post(live: Live, key: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    assert live.http is not None
    async with live.http.post(
        f"{live.url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        return resp.status, await resp.json(content_type=None)


async def _settled_requests(live: Live, account: str, want: int) -> int:
    """The account's recorded requests today, once its settlements have landed (bounded)."""
    deadline = Deadline(10)  # bounds the test's own waiting, not an assertion on speed
    while True:
        status, usage = await live.admin("GET", f"/accounts/{account}/usage")
        assert status == 200, usage
        got = int(usage["today"]["requests"])
        if (got >= want and usage.get("in_flight", 0) == 0) or deadline.passed():
            return got
        await asyncio.sleep(0.02)


def test_every_route_is_declared_and_every_model_handler_is_metered(gateway: Live) -> None:
    app = gateway.app
    assert app is not None
    table = app[ROUTE_FACTS]
    for resource in app.router.resources():
        for route in resource:
            if route.method == "HEAD":
                continue  # aiohttp adds HEAD beside each GET
            assert route in table, f"{route.method} {resource.canonical} has no declared facts"
            if route.handler in MODEL_HANDLERS:
                facts = table[route]
                assert facts.calls_model and facts.kind == "inference", resource.canonical
    # Every prefix of every model API is there.
    routes = _model_routes(app)
    assert {e for e, _ in routes} == {"chat", "responses", "messages", "gemini", "embeddings"}
    assert len(routes) >= 12
    # The companions are there too: token counting on both APIs, embeddings on both.
    templates = {t for _, t in routes}
    for template in (
        "/v1/messages/count_tokens",
        "/v1/embeddings",
        "/v1beta/models/{model}:countTokens",
        "/v1beta/models/{model}:embedContent",
        "/v1beta/models/{model}:batchEmbedContents",
        "/v1beta/{model}:batchEmbedContents",
    ):
        assert template in templates, template


async def test_a_limit_of_n_admits_exactly_n_on_every_route_and_spelling(gateway: Live) -> None:
    assert gateway.app is not None
    limit = 2
    for endpoint, template in _model_routes(gateway.app):
        for model in _spellings(template):
            tenant = await gateway.tenant()
            status, _ = await gateway.admin(
                "PUT", f"/accounts/{tenant.account}/quota", {"requests_per_minute": limit}
            )
            assert status == 200
            path, body = _call(endpoint, template, model)
            statuses = [(await _post(gateway, tenant.key, path, body))[0] for _ in range(limit + 2)]
            where = f"{endpoint} {path} {model}"
            assert statuses == [200] * limit + [429] * 2, where
            assert await _settled_requests(gateway, tenant.account, limit) == limit, where


async def test_a_blocked_account_is_served_on_no_route(gateway: Live) -> None:
    assert gateway.app is not None
    tenant = await gateway.tenant()
    status, _ = await gateway.admin("POST", f"/accounts/{tenant.account}/block", {})
    assert status == 200
    for endpoint, template in _model_routes(gateway.app):
        for model in _spellings(template):
            path, body = _call(endpoint, template, model)
            status, answer = await _post(gateway, tenant.key, path, body)
            # The reference gateways answer a blocked account's quota with 429.
            assert status == 429 and "blocked" in str(answer), (path, model, answer)
    assert await _settled_requests(gateway, tenant.account, 0) == 0


async def test_google_spelling_is_priced_like_the_catalog_id(gateway: Live, fake) -> None:
    # gemini-2.5-flash is the name the Google SDK sends; it must cost what the catalog says.
    tenant = await gateway.tenant()
    budget = {"cost_per_day_usd": 0.000001}
    status, _ = await gateway.admin("PUT", f"/accounts/{tenant.account}/quota", budget)
    assert status == 200
    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"maxOutputTokens": 1000},
    }
    for name in ("gemini-2.5-flash", "google/gemini-2.5-flash", "gemini-2-5-flash"):
        status, answer = await _post(
            gateway, tenant.key, f"/v1beta/models/{name}:generateContent", body
        )
        assert status == 429, (name, answer)
    assert not fake.requests


async def test_an_unknown_model_on_a_path_is_refused_before_any_work(gateway: Live) -> None:
    tenant = await gateway.tenant()
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    status, answer = await _post(
        gateway, tenant.key, "/v1beta/models/nobody/nothing:generateContent", body
    )
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT"
    assert await _settled_requests(gateway, tenant.account, 0) == 0


async def test_a_chained_transcript_is_counted_before_admission(gateway: Live) -> None:
    tenant = await gateway.tenant()
    big = "word " * 40_000  # ~200 KB of input, stored by a key without limits
    status, first = await _post(
        gateway, tenant.key, "/v1/responses", {"model": "local/echo", "input": big}
    )
    assert status == 200, first
    limited = await gateway.tenant(account=tenant.account, quota={"tokens_per_minute": 5000})
    chained = {
        "model": "local/echo",
        "input": "more",
        "previous_response_id": first["id"],
        "max_output_tokens": 10,
    }
    status, answer = await _post(gateway, limited.key, "/v1/responses", chained)
    assert status == 429, answer
    assert answer["error"]["code"] == "REQUEST_LIMIT_EXCEEDED"
    # Without the chain, the same key is served: the transcript made the difference.
    small = {"model": "local/echo", "input": "more", "max_output_tokens": 10}
    status, _ = await _post(gateway, limited.key, "/v1/responses", small)
    assert status == 200


@pytest.mark.parametrize("prefix", ["/v1beta", "/ai-gateway/gemini/v1beta"])
async def test_a_real_provider_through_a_slashed_id_is_metered(
    gateway: Live, fake, prefix: str
) -> None:
    tenant = await gateway.tenant()
    status, _ = await gateway.admin(
        "PUT", f"/accounts/{tenant.account}/quota", {"requests_per_minute": 1}
    )
    assert status == 200
    text = next(r for r in recordings("gemini") if r.name == "google-text.json")
    fake.push(Scenario(recording=text))
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    path = f"{prefix}/models/google/gemini-2.5-flash:generateContent"
    first, _ = await _post(gateway, tenant.key, path, body)
    second, answer = await _post(gateway, tenant.key, path, body)
    assert (first, second) == (200, 429), answer
    assert len(fake.requests) == 1


async def test_a_route_without_admission_fails_closed(gateway: Live, fake) -> None:
    # Take admission away from each model route in turn (its facts say it calls no model):
    # the call must fail loudly, never reach a provider or the in-process model.
    assert gateway.app is not None
    table = gateway.app[ROUTE_FACTS]
    tenant = await gateway.tenant()
    for route, facts in list(table.items()):
        if not facts.calls_model or route.resource is None:
            continue
        endpoint = facts.endpoint or ""
        provider_model = "gpt-5-4" if facts.model_from == "body" else "gemini-2.5-flash"
        for template in _templates(route):
            for model in ("local/echo", provider_model):
                table[route] = dataclasses.replace(facts, model_from=None)
                try:
                    path, body = _call(endpoint, template, model)
                    status, answer = await _post(gateway, tenant.key, path, body)
                finally:
                    table[route] = facts
                assert status == 500, (path, model, answer)
                assert "not admitted" in str(answer), answer
    assert fake.requests == []


async def test_the_upstream_client_sends_nothing_without_an_admission(fake) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(GatewayError) as refused:
            async with open_upstream(
                session, f"{fake.url}/v1/chat/completions", b"{}", {}, Timeouts(), admitted=None
            ):
                pass
    assert refused.value.code == "not_admitted"
    assert fake.requests == []


def test_a_cut_chained_stream_is_charged_its_transcript() -> None:
    # A stream cut before the provider reported usage is charged the input the estimate held:
    # the body and the transcript prepended to it.
    held = Reservation("r1", "acct", "key", "local/echo")
    ctx = RequestContext(request_id="x", shape="openai", body=b"{}" * 10, reservation=held)
    ctx.history_bytes, ctx.stream_events = 2_000, 3
    charge_cut_stream(ctx)
    assert ctx.usage is not None
    assert ctx.usage.input_tokens == math.ceil(2_020 / Rules().bytes_per_token)
    assert ctx.usage.output_tokens == 3


async def test_another_apis_cap_field_does_not_shrink_the_estimate(gateway: Live) -> None:
    # `max_tokens` is not a Gemini field: the provider never sees it as a cap, so the estimate
    # must hold the plan's default output cap, over this 3,000-token limit.
    tenant = await gateway.tenant(quota={"tokens_per_minute": 3000})
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "max_tokens": 1}
    status, answer = await _post(
        gateway, tenant.key, "/v1beta/models/local/echo:generateContent", body
    )
    assert status == 429, answer


async def test_a_token_count_holds_no_output(gateway: Live) -> None:
    # A count generates nothing: a key whose token limit is below the default output cap may
    # still count what it would send.
    tenant = await gateway.tenant(quota={"tokens_per_minute": 1000})
    body = {"model": "local/echo", "messages": [{"role": "user", "content": "hi"}]}
    status, answer = await _post(gateway, tenant.key, "/v1/messages/count_tokens", body)
    assert status == 200, answer
    status, answer = await _post(gateway, tenant.key, "/v1/messages", {**body, "max_tokens": 5000})
    assert status == 429, answer

"""Model and endpoint access lists on plans, accounts and keys: intersected down the chain,
enforced on every client API and resolution path before anything reaches a provider, and
reflected in the model lists."""

from __future__ import annotations

from typing import Any

import pytest

from edge.errors import GatewayError
from edge.fallback import fallback_chain
from policies.access import Access, ScopeAccess, model_names, scope_access
from policies.catalog import build_catalog, default_catalog_data
from policies.quota import QuotaError, validate_quota
from policies.quota_plans import PlanError, build_plans, default_plans_data
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import Live, Tenant
from tests.support.matrix import call, request_for

ENV = {"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-x", "GEMINI_API_KEY": "x"}
# A model whose catalog chain falls back to an OpenAI model.
CHAINED = {"id": "chained", "provider": "anthropic", "upstream": "c", "fallbacks": ["gpt-5-4"]}
CATALOG = build_catalog(default_catalog_data(), ENV, {"models": [CHAINED]})
DENIED = "gpt-5-4"  # an OpenAI model, served by the fake upstream when allowed
ALLOWED = "local/echo"
CHAT_OPTIONS = {"providerOptions": {"gateway": {"models": [DENIED]}}}


def _model(name: str) -> Any:
    found = CATALOG.resolve(name)
    assert found is not None, name
    return found


# --- the rules, pure ---------------------------------------------------------------------


def test_globs_match_ids_aliases_and_the_provider_qualified_name() -> None:
    names = model_names(_model("gpt-5-4"))
    assert "gpt-5-4" in names and "openai/gpt-5.4" in names
    only_openai = ScopeAccess(models=("openai/*",))
    assert only_openai.allows_model(names)
    assert not only_openai.allows_model(model_names(_model("claude-sonnet-4-6")))
    assert ScopeAccess(models=("claude-sonnet-*",)).allows_model(
        model_names(_model("claude-sonnet-4-6"))
    )


def test_deny_wins_over_allow_and_scopes_intersect() -> None:
    gpt = _model("gpt-5-4")
    assert not Access((ScopeAccess(models=("*",), deny_models=("gpt-*",)),)).allows_model(gpt)
    account = ScopeAccess(models=("local/*",))
    wider_key = ScopeAccess(models=("*",))
    # A key's list cannot widen its account's: both must allow.
    assert not Access((account, wider_key)).allows_model(gpt)
    assert Access((account, wider_key)).allows_model(_model(ALLOWED))
    narrower = Access(
        (ScopeAccess(endpoints=("chat", "responses")), ScopeAccess(endpoints=("responses",)))
    )
    assert narrower.endpoints() == ["responses"]


@pytest.mark.parametrize(
    ("table", "field", "message"),
    [
        ({"models": "openai/*"}, "models", "expected an array of strings"),
        ({"deny_models": [""]}, "deny_models", "each entry a string"),
        ({"endpoints": ["completions"]}, "endpoints", "unknown client API 'completions'"),
        ({"models": ["x"] * 101}, "models", "at most 100 entries"),
        ({"model": ["x"]}, "model", "the fields are"),
    ],
)
def test_bad_lists_are_refused_naming_the_field(
    table: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(QuotaError, match=message) as caught:
        validate_quota(table)
    assert caught.value.field == field


def test_an_unknown_field_lists_the_valid_ones() -> None:
    with pytest.raises(QuotaError) as caught:
        validate_quota({"requests_per_mintue": 5})
    assert "requests_per_minute" in caught.value.message and "deny_models" in caught.value.message


def test_plans_carry_lists_and_overrides_lift_them_with_null() -> None:
    plans = build_plans(default_plans_data(), {"starter": {"models": ["local/*"]}})
    assert scope_access(plans.merged("starter", {})).models == ("local/*",)
    assert scope_access(plans.merged("starter", {"models": None})).models is None
    with pytest.raises(PlanError, match="models"):
        build_plans(default_plans_data(), {"bad": {"models": None}})


def test_a_requested_fallback_outside_the_lists_is_refused_a_declared_one_skipped() -> None:
    access = Access((ScopeAccess(models=("claude-*", "chained")),))
    with pytest.raises(GatewayError) as caught:
        fallback_chain(CATALOG, "claude-sonnet-4-6", CHAT_OPTIONS, "chat", access)
    assert caught.value.status == 403 and caught.value.code == "model_not_allowed"
    assert DENIED in caught.value.message
    only_local = Access((ScopeAccess(models=("local/*",)),))
    with pytest.raises(GatewayError) as refused:
        fallback_chain(CATALOG, "openai/gpt-5.4", {}, "chat", only_local)
    assert "openai/gpt-5.4" in refused.value.message and "gpt-5-4" in refused.value.message
    # A fallback the catalog declares, which the caller never named, is left out of the chain.
    everything = [r.model.id for r in fallback_chain(CATALOG, "chained", {}, "chat")]
    assert everything == ["chained", "gpt-5-4"]
    chain = fallback_chain(CATALOG, "chained", {}, "chat", access)
    assert [r.model.id for r in chain] == ["chained"]


# --- live, on each store -----------------------------------------------------------------


async def _restricted(
    gateway: Live, account_table: dict[str, Any], key_table: Any = None
) -> Tenant:
    tenant = await gateway.tenant(quota=key_table)
    status, body = await gateway.admin("PUT", f"/accounts/{tenant.account}/quota", account_table)
    assert status == 200, body
    return tenant


def _error_code(api: str, body: Any) -> tuple[str | None, str]:
    """(code, message) of an error body in each API's shape."""
    error = body["error"]
    if api == "gemini":
        reasons = [d.get("reason") for d in error.get("details", [])]
        assert error["status"] == "PERMISSION_DENIED", body
        return (reasons[0].lower() if reasons else None), error["message"]
    if api == "messages":
        assert body["type"] == "error" and error["type"] == "permission_error", body
    return error.get("code"), error["message"]


@pytest.mark.parametrize("api", ["chat", "messages", "gemini", "responses"])
async def test_every_client_api_refuses_a_model_outside_the_lists(
    gateway: Live, fake: FakeUpstream, api: str
) -> None:
    tenant = await _restricted(gateway, {"models": ["local/*"]})
    for stream in (False, True):
        path, body = request_for(api, DENIED, "hello", stream)
        got = await call(gateway, tenant.key, api, path, body)
        assert got.status == 403, got
        code, message = _error_code(api, got.error)
        assert code == "model_not_allowed" and DENIED in message
    path, body = request_for(api, ALLOWED, "hello", False)
    assert (await call(gateway, tenant.key, api, path, body)).status == 200
    assert fake.requests == []  # nothing reached a provider


async def test_embeddings_token_counts_and_fallbacks_are_held_to_the_lists(
    gateway: Live, fake: FakeUpstream
) -> None:
    tenant = await _restricted(gateway, {"deny_models": ["openai/*", "gemini-*"]})
    assert gateway.http is not None
    auth = {"Authorization": f"Bearer {tenant.key}"}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"}),
        (
            "/v1beta/models/gemini-embedding-001:embedContent",
            {"content": {"parts": [{"text": "x"}]}},
        ),
        ("/v1beta/models/gemini-2-5-flash:countTokens", {"contents": [{"parts": [{"text": "x"}]}]}),
        (
            "/v1/chat/completions",
            {"model": ALLOWED, "messages": [{"role": "user", "content": "x"}]} | CHAT_OPTIONS,
        ),
        ("/v1/responses", {"model": DENIED, "input": "x", "background": True}),
    ]
    for path, body in calls:
        async with gateway.http.post(f"{gateway.url}{path}", json=body, headers=auth) as resp:
            answer = await resp.json()
            assert resp.status == 403, (path, answer)
            assert "not allowed" in answer["error"]["message"], answer
    assert fake.requests == []


async def test_a_key_narrows_its_account_and_cannot_widen_it(
    gateway: Live, fake: FakeUpstream
) -> None:
    tenant = await _restricted(gateway, {"models": ["local/*"]}, {"models": ["*"]})
    path, body = request_for("chat", DENIED, "hello", False)
    assert (await call(gateway, tenant.key, "chat", path, body)).status == 403
    narrowed = await _restricted(gateway, {"models": ["*"]}, {"deny_models": ["local/*"]})
    path, body = request_for("chat", ALLOWED, "hello", False)
    got = await call(gateway, narrowed.key, "chat", path, body)
    assert got.status == 403 and got.error["error"]["code"] == "model_not_allowed"
    assert fake.requests == []


async def test_an_account_admin_cannot_widen_its_account(gateway: Live) -> None:
    tenant = await _restricted(gateway, {"models": ["local/*"]})
    status, made = await gateway.admin(
        "POST", "/keys", {"account": tenant.account, "scopes": ["ai_gateway:admin"]}
    )
    assert status == 201, made
    status, body = await gateway.admin(
        "PUT", f"/accounts/{tenant.account}/quota", {"models": None}, token=made["key"]
    )
    assert status == 403, body


async def test_endpoint_lists_refuse_other_client_apis(gateway: Live, fake: FakeUpstream) -> None:
    tenant = await _restricted(gateway, {}, {"endpoints": ["responses"]})
    path, body = request_for("chat", ALLOWED, "hello", False)
    got = await call(gateway, tenant.key, "chat", path, body)
    assert got.status == 403 and got.error["error"]["code"] == "endpoint_not_allowed"
    assert "responses" in got.error["error"]["message"]
    path, body = request_for("responses", ALLOWED, "hello", False)
    assert (await call(gateway, tenant.key, "responses", path, body)).status == 200


async def _get(gateway: Live, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    assert gateway.http is not None
    async with gateway.http.get(f"{gateway.url}{path}", headers=headers) as resp:
        return resp.status, await resp.json()


async def test_model_lists_show_only_what_the_caller_may_call(gateway: Live) -> None:
    tenant = await _restricted(
        gateway, {"models": ["local/*", "claude-*"]}, {"deny_models": ["claude-opus-*"]}
    )
    auth = {"Authorization": f"Bearer {tenant.key}"}
    status, listed = await _get(gateway, "/v1/models", auth)
    assert status == 200
    ids = {m["id"] for m in listed["data"]}
    assert ids == {"local/echo", "claude-sonnet-4-6", "claude-haiku-4-5"}
    status, anthropic = await _get(
        gateway, "/v1/models", auth | {"anthropic-version": "2023-06-01"}
    )
    assert {m["id"] for m in anthropic["data"]} == ids
    status, google = await _get(gateway, "/v1beta/models", {"x-goog-api-key": tenant.key})
    assert status == 200 and {m["name"] for m in google["models"]} == {f"models/{i}" for i in ids}
    status, one = await _get(gateway, f"/v1/models/{DENIED}", auth)
    assert status == 403 and one["error"]["code"] == "model_not_allowed"
    unrestricted = await gateway.tenant()
    status, everything = await _get(
        gateway, "/v1/models", {"Authorization": f"Bearer {unrestricted.key}"}
    )
    assert DENIED in {m["id"] for m in everything["data"]}

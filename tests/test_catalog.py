"""The catalog: both id styles, endpoint restrictions, providers from the environment."""

from __future__ import annotations

import pytest

from edge.errors import GatewayError
from edge.routing import resolve_route
from policies.catalog import CatalogError, build_catalog, default_catalog_data

ENV = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "GOOGLE_API_KEY": "k"}


def catalog(env=ENV, extra=None):
    return build_catalog(default_catalog_data(), env, extra)


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("gpt-5-4", "gpt-5-4"),
        ("openai/gpt-5.4", "gpt-5-4"),
        ("claude-sonnet-4-6", "claude-sonnet-4-6"),
        ("anthropic/claude-sonnet-4.6", "claude-sonnet-4-6"),
        ("gemini-2-5-flash", "gemini-2-5-flash"),
        ("databricks-qwen35-122b-a10b", "databricks-qwen35-122b-a10b"),
        ("gpt-5-3-codex", "gpt-5-3-codex"),
        ("local/echo", "local/echo"),
    ],
)
def test_both_id_styles(name: str, model_id: str) -> None:
    model = catalog().resolve(name)
    assert model is not None and model.id == model_id


def test_codex_is_responses_only() -> None:
    cat = catalog()
    with pytest.raises(GatewayError) as info:
        resolve_route(cat, "gpt-5-3-codex", "chat")
    assert (info.value.status, info.value.message) == (
        400,
        "model is not available on this endpoint",
    )
    assert resolve_route(cat, "gpt-5-3-codex", "responses").upstream_api == "responses"


def test_unknown_model() -> None:
    with pytest.raises(GatewayError) as info:
        resolve_route(catalog(), "gpt-9", "chat")
    assert (info.value.status, info.value.code) == (400, "invalid_model")
    message = info.value.message
    assert message.startswith("unknown model 'gpt-9'.")
    assert "'gpt-5-4'" in message and "GET /v1/models" in message


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        (None, "missing_parameter", "model is required"),
        ("", "missing_parameter", "model is required"),
        (123, "invalid_type", "Invalid type for 'model': expected a string, but got an integer"),
        (True, "invalid_type", "Invalid type for 'model': expected a string, but got a boolean"),
        (["gpt-5-4"], "invalid_type", "Invalid type for 'model': expected a string, but got an"),
        ({"id": "x"}, "invalid_type", "Invalid type for 'model': expected a string, but got an"),
    ],
)
def test_missing_or_mistyped_model_is_named(name: object, code: str, message: str) -> None:
    with pytest.raises(GatewayError) as info:
        resolve_route(catalog(), name, "chat")
    assert (info.value.status, info.value.code, info.value.param) == (400, code, "model")
    assert info.value.message.startswith(message)


def test_unconfigured_provider_is_a_clear_error() -> None:
    with pytest.raises(GatewayError) as info:
        resolve_route(catalog(env={}), "claude-sonnet-4-6", "chat")
    assert info.value.status == 503 and "not configured" in info.value.message


def test_provider_urls_follow_the_sdks() -> None:
    cat = catalog(env={**ENV, "OPENAI_BASE_URL": "http://x/v1/"})
    assert cat.providers["openai"].base_url == "http://x/v1"
    assert cat.providers["anthropic"].base_url == "https://api.anthropic.com"
    assert cat.providers["gemini"].api_key == "k"  # GOOGLE_API_KEY when GEMINI_API_KEY is unset


def test_operator_adds_an_openai_compatible_provider() -> None:
    extra = {
        "providers": {"vllm": {"kind": "openai-compatible", "base_url": "http://vllm:8000/v1"}},
        "models": [{"id": "llama-3", "provider": "vllm", "upstream": "meta/llama-3"}],
    }
    cat = catalog(extra=extra)
    route = resolve_route(cat, "llama-3", "chat")
    assert route.passthrough and route.provider.base_url == "http://vllm:8000/v1"


def test_duplicate_names_are_refused() -> None:
    extra = {"models": [{"id": "x", "aliases": ["openai/gpt-5.4"], "provider": "openai"}]}
    with pytest.raises(CatalogError):
        catalog(extra=extra)


def test_prices() -> None:
    model = catalog().resolve("gpt-5-4")
    assert model is not None
    assert model.price.cost(1_000_000, 1_000_000) == pytest.approx(17.5)
    assert model.price.cost(1_000_000, 0, cached_tokens=1_000_000) == pytest.approx(0.25)


def _names_of(model, providers) -> set[str]:
    """What a client may send for a model, as the README's Models section says."""
    prefixes = {model.provider} | {a.split("/", 1)[0] for a in model.aliases if "/" in a}
    names = {model.id, *model.aliases, model.upstream}
    bare = {n.split("/", 1)[-1] if n.split("/", 1)[0] in prefixes else n for n in names}
    names |= {f"{p}/{b}" for p in prefixes for b in bare}
    return names | {f"models/{n}" for n in names} | {n.upper() for n in names}


def test_every_accepted_name_of_every_model_resolves_to_it() -> None:
    cat = catalog()
    upstreams = [m.upstream for m in cat.models]
    for model in cat.models:
        for name in _names_of(model, cat.providers):
            if name.lower() in {u.lower() for u in upstreams if upstreams.count(u) > 1}:
                continue  # shared by two models: left out, never guessed
            found = cat.resolve(name)
            assert found is model, (name, found and found.id, model.id)


def test_provider_native_names_real_clients_send() -> None:
    cat = catalog()
    for name, want in {
        "gpt-5.4": "gpt-5-4",
        "gpt-5.4-mini": "gpt-5-4-mini",
        "openai/gpt-5.4": "gpt-5-4",
        "claude-haiku-4-5-20251001": "claude-haiku-4-5",
        "anthropic/claude-sonnet-4-6": "claude-sonnet-4-6",
        "gemini-2.5-flash": "gemini-2-5-flash",
        "models/gemini-2.5-flash": "gemini-2-5-flash",
    }.items():
        found = cat.resolve(name)
        assert found is not None and found.id == want, name


def test_a_provider_name_two_models_share_is_not_guessed() -> None:
    extra = {
        "providers": {"vllm": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:1"}},
        "models": [
            {"id": "mirror-a", "provider": "vllm", "upstream": "gpt-5.4"},
        ],
    }
    cat = build_catalog(default_catalog_data(), {}, extra)
    assert cat.resolve("gpt-5.4") is None  # two models are served under that name
    assert cat.resolve("gpt-5-4").id == "gpt-5-4"
    assert cat.resolve("vllm/gpt-5.4").id == "mirror-a"

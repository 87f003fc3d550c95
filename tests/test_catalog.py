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
    assert (info.value.status, info.value.message, info.value.code) == (
        400,
        "unknown model",
        "invalid_model",
    )


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

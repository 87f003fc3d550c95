"""Embedding models in the catalog, the `embeddings` endpoint kind, the documented local token
estimate, and what an embedding call holds at admission."""

from __future__ import annotations

import math
from typing import Any

import openai
import pytest

from edge.errors import GatewayError
from edge.routing import resolve_route
from edge.translate import neutral as n
from edge.translate.token_estimate import MEDIA_TOKENS, request_tokens, text_tokens
from policies.catalog import (
    ENDPOINTS,
    GENERATION_ENDPOINTS,
    CatalogError,
    build_catalog,
    default_catalog_data,
)
from policies.quota import Rules
from policies.quota_estimate import estimate
from tests.support.gateway import Live

ENV = {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k", "GEMINI_API_KEY": "k"}


def _catalog(extra: dict[str, Any] | None = None) -> Any:
    return build_catalog(default_catalog_data(), ENV, extra)


def test_embedding_models_are_callable_for_embeddings_only() -> None:
    cat = _catalog()
    assert "embeddings" in ENDPOINTS and "embeddings" not in GENERATION_ENDPOINTS
    for name, upstream_api in (
        ("text-embedding-3-small", "embeddings"),
        ("openai/text-embedding-3-large", "embeddings"),
        ("gemini-embedding-001", "gemini"),
        ("models/gemini-embedding-001", "gemini"),
        ("local/echo", "chat"),
    ):
        route = resolve_route(cat, name, "embeddings")
        assert route.upstream_api == upstream_api, name
        assert route.passthrough == (upstream_api == "embeddings"), name
    with pytest.raises(GatewayError) as refused:
        resolve_route(cat, "text-embedding-3-small", "chat")
    assert refused.value.message == "model is not available on this endpoint"
    # A model that names no endpoints is a text model: not an embedding model.
    for model in cat.models:
        if model.id not in ("local/echo",) and "embedding" not in model.id:
            assert not model.allows("embeddings"), model.id


def test_an_embedding_model_needs_a_provider_that_embeds() -> None:
    on_claude = {"models": [{"id": "e", "provider": "anthropic", "endpoints": ["embeddings"]}]}
    with pytest.raises(CatalogError, match="serves no embeddings"):
        _catalog(on_claude)
    chat_only = {
        "providers": {
            "vllm": {"kind": "openai-compatible", "base_url": "http://v/v1", "apis": ["chat"]}
        },
        "models": [{"id": "e", "provider": "vllm", "endpoints": ["embeddings"]}],
    }
    with pytest.raises(CatalogError, match="serves no embeddings"):
        _catalog(chat_only)
    # A compatible server speaks OpenAI's embeddings API unless its apis say otherwise.
    vllm = {
        "providers": {"vllm": {"kind": "openai-compatible", "base_url": "http://v/v1"}},
        "models": [{"id": "bge", "provider": "vllm", "endpoints": ["embeddings"]}],
    }
    route = resolve_route(_catalog(vllm), "bge", "embeddings")
    assert route.passthrough and route.upstream_api == "embeddings"


def test_an_embeddings_only_provider_serves_no_text_model() -> None:
    extra = {
        "providers": {
            "emb": {"kind": "openai-compatible", "base_url": "http://e/v1", "apis": ["embeddings"]}
        },
        "models": [{"id": "t", "provider": "emb"}],
    }
    with pytest.raises(CatalogError, match="only serves embeddings"):
        _catalog(extra)
    # A provider listing embeddings first still answers text on a text API.
    first = {
        "providers": {
            "mix": {
                "kind": "openai-compatible",
                "base_url": "http://m/v1",
                "apis": ["embeddings", "chat"],
            }
        },
        "models": [{"id": "t", "provider": "mix"}],
    }
    assert resolve_route(_catalog(first), "t", "messages").upstream_api == "chat"


def test_the_local_estimate_is_the_documented_rule() -> None:
    assert text_tokens("Hello, world") == 3  # 12 bytes / 4
    assert text_tokens("é" * 3) == 2  # UTF-8 bytes, not characters: 6 / 4, rounded up
    req = n.Request(
        model="m",
        items=[
            n.Message(role="system", parts=[n.TextPart("Be brief.")]),
            n.Message(role="user", parts=[n.TextPart("Hello, world"), n.ImagePart(data="x")]),
        ],
        tools=[n.ToolSpec(name="get", description="Get it", parameters={"type": "object"})],
    )
    expected = 3 + (3 + math.ceil(9 / 4)) + (3 + 3 + MEDIA_TOKENS)
    expected += text_tokens("get") + text_tokens("Get it") + text_tokens('{"type":"object"}')
    assert request_tokens(req) == expected


def test_an_embedding_estimate_holds_its_input_only() -> None:
    model = _catalog().resolve("text-embedding-3-small")
    held = estimate(400, {"input": "x"}, Rules(), model, "embeddings")
    assert (held.input_tokens, held.output_tokens) == (200, 0)  # 400 bytes at 2 per token


async def test_an_embedding_call_is_not_held_a_generation_cap(gateway: Live) -> None:
    # 100 tokens a minute: a generation call holds the plan's 4,096-token default output cap and
    # is refused; an embedding call holds only its input.
    tenant = await gateway.tenant(quota={"tokens_per_minute": 100})
    sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{gateway.url}/v1", max_retries=0)
    try:
        made = await sdk.embeddings.create(model="local/echo", input="small")
        with pytest.raises(openai.RateLimitError):
            await sdk.chat.completions.create(
                model="local/echo", messages=[{"role": "user", "content": "small"}]
            )
    finally:
        await sdk.close()
    assert made.usage.prompt_tokens == 1

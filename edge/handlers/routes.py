"""Inference routes, mounted at /v1 and under the gateway-style prefixes."""

from __future__ import annotations

from aiohttp import web

from edge.handlers import chat, count_tokens, embeddings, gemini, health, messages, models
from edge.handlers.responses_routes import setup_responses
from edge.route_table import (
    ANTHROPIC_READ,
    CHAT,
    COUNT_METHODS,
    EMBED_METHODS,
    EMBEDDINGS,
    GEMINI,
    GEMINI_COUNT,
    GEMINI_EMBED,
    GEMINI_MODELS_TARGET,
    GEMINI_READ,
    GEMINI_TARGET,
    MESSAGES,
    MESSAGES_COUNT,
    OPENAI_READ,
    PROBE,
    RouteFacts,
    declare,
    gemini_pattern,
)

OPENAI_PREFIXES = ("/v1", "/ai-gateway/mlflow/v1", "/ai-gateway/openai/v1")
ANTHROPIC_PREFIXES = ("/v1", "/ai-gateway/anthropic/v1")
# The Google SDK calls /v1 by default and /v1beta on request; both serve the same API.
GEMINI_PREFIXES = ("/v1beta", "/v1", "/ai-gateway/gemini/v1beta", "/ai-gateway/gemini/v1")


def _model_lists(app: web.Application, prefixes: tuple[str, ...], facts: RouteFacts) -> None:
    """The model list and one model, in the shape `facts` names (or the caller's headers say)."""
    for prefix in prefixes:
        declare(app, "GET", f"{prefix}/models", models.list_models, facts)
        declare(app, "GET", f"{prefix}/models/{{model:.+}}", models.get_model, facts)


def setup_inference(app: web.Application) -> None:
    """Register health, models, Chat Completions, Anthropic Messages, Gemini and their
    companions (token counting, embeddings)."""
    declare(app, "GET", "/healthz", health.healthz, PROBE)
    declare(app, "GET", "/readyz", health.readyz, PROBE)
    for prefix in OPENAI_PREFIXES:
        declare(app, "POST", f"{prefix}/chat/completions", chat.chat_completions, CHAT)
        declare(app, "POST", f"{prefix}/embeddings", embeddings.create_embeddings, EMBEDDINGS)
    # `/v1/models` is shared by the three SDKs: the handler answers in the caller's shape.
    _model_lists(app, OPENAI_PREFIXES, OPENAI_READ)
    setup_responses(app, OPENAI_PREFIXES)
    for prefix in ANTHROPIC_PREFIXES:
        declare(app, "POST", f"{prefix}/messages", messages.messages, MESSAGES)
        declare(
            app,
            "POST",
            f"{prefix}/messages/count_tokens",
            count_tokens.count_message_tokens,
            MESSAGES_COUNT,
        )
    _model_lists(app, tuple(p for p in ANTHROPIC_PREFIXES if p != "/v1"), ANTHROPIC_READ)
    _model_lists(app, tuple(p for p in GEMINI_PREFIXES if p != "/v1"), GEMINI_READ)
    count_target = gemini_pattern(COUNT_METHODS)
    embed_target = gemini_pattern(EMBED_METHODS)
    for prefix in GEMINI_PREFIXES:
        # `{model}:{method}`; a model id may itself contain slashes (`google/gemini-2.5-flash`).
        # Each group of methods has its own route, with its own facts; the generation route
        # takes every other method, so an unknown one still gets Google's 404.
        for under in (f"{prefix}/models", prefix):
            # Under the prefix itself: clients that name a slashed id without `models/`
            # (`/v1beta/openai/gpt-5.4:generateContent`, the AI SDK's Google provider); only
            # Gemini methods, so nothing else under the prefix is taken.
            generate_target = GEMINI_MODELS_TARGET if under != prefix else GEMINI_TARGET
            count = count_tokens.count_gemini_tokens
            declare(app, "POST", f"{under}/{{target:{count_target}}}", count, GEMINI_COUNT)
            embed = embeddings.gemini_embed
            declare(app, "POST", f"{under}/{{target:{embed_target}}}", embed, GEMINI_EMBED)
            declare(app, "POST", f"{under}/{{target:{generate_target}}}", gemini.generate, GEMINI)

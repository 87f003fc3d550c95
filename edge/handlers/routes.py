"""Inference routes, mounted at /v1 and under the gateway-style prefixes."""

from __future__ import annotations

from aiohttp import web

from edge.handlers import chat, gemini, health, messages, models
from edge.handlers.responses_routes import setup_responses

OPENAI_PREFIXES = ("/v1", "/ai-gateway/mlflow/v1", "/ai-gateway/openai/v1")
ANTHROPIC_PREFIXES = ("/v1", "/ai-gateway/anthropic/v1")
# The Google SDK calls /v1 by default and /v1beta on request; both serve the same API.
GEMINI_PREFIXES = ("/v1beta", "/v1", "/ai-gateway/gemini/v1beta", "/ai-gateway/gemini/v1")


def setup_inference(app: web.Application) -> None:
    """Register health, models, Chat Completions, Anthropic Messages and Gemini."""
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    for prefix in OPENAI_PREFIXES:
        app.router.add_post(f"{prefix}/chat/completions", chat.chat_completions)
        app.router.add_get(f"{prefix}/models", models.list_models)
        app.router.add_get(f"{prefix}/models/{{model:.+}}", models.get_model)
    setup_responses(app, OPENAI_PREFIXES)
    for prefix in ANTHROPIC_PREFIXES:
        app.router.add_post(f"{prefix}/messages", messages.messages)
    for prefix in GEMINI_PREFIXES:
        # `{model}:{method}`; a model id may itself contain slashes (`google/gemini-2.5-flash`).
        app.router.add_post(f"{prefix}/models/{{target:.+}}", gemini.generate)

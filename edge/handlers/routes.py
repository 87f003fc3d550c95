"""Inference routes, mounted at /v1 and under the gateway-style prefixes."""

from __future__ import annotations

from aiohttp import web

from edge.handlers import chat, health, models

OPENAI_PREFIXES = ("/v1", "/ai-gateway/mlflow/v1", "/ai-gateway/openai/v1")


def setup_inference(app: web.Application) -> None:
    """Register health, models and Chat Completions."""
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    for prefix in OPENAI_PREFIXES:
        app.router.add_post(f"{prefix}/chat/completions", chat.chat_completions)
        app.router.add_get(f"{prefix}/models", models.list_models)
        app.router.add_get(f"{prefix}/models/{{model:.+}}", models.get_model)

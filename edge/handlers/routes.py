"""Inference routes, mounted at /v1 and under the gateway-style prefixes."""

from __future__ import annotations

from aiohttp import web

from edge.handlers import chat, gemini, health, messages, models
from edge.handlers.responses_routes import setup_responses
from edge.route_table import (
    CHAT,
    GEMINI,
    GEMINI_TARGET,
    MESSAGES,
    OPENAI_READ,
    PROBE,
    declare,
)

OPENAI_PREFIXES = ("/v1", "/ai-gateway/mlflow/v1", "/ai-gateway/openai/v1")
ANTHROPIC_PREFIXES = ("/v1", "/ai-gateway/anthropic/v1")
# The Google SDK calls /v1 by default and /v1beta on request; both serve the same API.
GEMINI_PREFIXES = ("/v1beta", "/v1", "/ai-gateway/gemini/v1beta", "/ai-gateway/gemini/v1")


def setup_inference(app: web.Application) -> None:
    """Register health, models, Chat Completions, Anthropic Messages and Gemini."""
    declare(app, "GET", "/healthz", health.healthz, PROBE)
    declare(app, "GET", "/readyz", health.readyz, PROBE)
    for prefix in OPENAI_PREFIXES:
        declare(app, "POST", f"{prefix}/chat/completions", chat.chat_completions, CHAT)
        declare(app, "GET", f"{prefix}/models", models.list_models, OPENAI_READ)
        declare(app, "GET", f"{prefix}/models/{{model:.+}}", models.get_model, OPENAI_READ)
    setup_responses(app, OPENAI_PREFIXES)
    for prefix in ANTHROPIC_PREFIXES:
        declare(app, "POST", f"{prefix}/messages", messages.messages, MESSAGES)
    for prefix in GEMINI_PREFIXES:
        # `{model}:{method}`; a model id may itself contain slashes (`google/gemini-2.5-flash`).
        declare(app, "POST", f"{prefix}/models/{{target:.+}}", gemini.generate, GEMINI)
        # Clients that name a slashed id without `models/` (`/v1beta/openai/gpt-5.4:generate
        # Content`, the AI SDK's Google provider): only a Gemini method, so nothing else under
        # the prefix is taken.
        declare(app, "POST", f"{prefix}/{{target:{GEMINI_TARGET}}}", gemini.generate, GEMINI)

"""The model list in Google's shape (`GET /v1beta/models`, `GET /v1beta/models/{model}`): what
google-genai's `models.list()` and `models.get()` read. Each model is named `models/<id>` and
lists the methods it may be called with here."""

from __future__ import annotations

from aiohttp import web

from edge.errors import GatewayError
from edge.route_table import COUNT_METHODS, EMBED_METHODS, GENERATE_METHODS
from policies.catalog import Model

PAGE_SIZE = 50  # Google's default page size
MAX_PAGE_SIZE = 1000


def methods(model: Model) -> list[str]:
    """The Gemini methods a model answers here: generation and counting from the Gemini API,
    the embedding methods for an embedding model."""
    found: list[str] = []
    if model.allows("gemini"):
        found += [*GENERATE_METHODS, *COUNT_METHODS]
    if model.allows("embeddings"):
        found += list(EMBED_METHODS)
    return found


def entry(model: Model) -> dict[str, object]:
    """One `Model` resource."""
    found: dict[str, object] = {
        "name": f"models/{model.id}",
        "baseModelId": model.id,
        "displayName": model.id,
        "supportedGenerationMethods": methods(model),
    }
    if model.description:
        found["description"] = model.description
    if model.max_output_tokens:
        found["outputTokenLimit"] = model.max_output_tokens
    return found


def _int_query(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise GatewayError(400, f"Invalid value at '{name}': expected a non-negative integer.")
    return min(int(raw), maximum)


def model_list(request: web.Request, models: list[Model]) -> web.Response:
    """A `ListModelsResponse` page (`pageSize`, then `pageToken` from the previous page)."""
    size = _int_query(request, "pageSize", PAGE_SIZE, MAX_PAGE_SIZE) or PAGE_SIZE
    start = _int_query(request, "pageToken", 0, len(models))
    end = start + size
    body: dict[str, object] = {"models": [entry(model) for model in models[start:end]]}
    if end < len(models):
        body["nextPageToken"] = str(end)
    return web.json_response(body)


def one_model(model: Model | None, name: str) -> web.Response:
    """One listed model; 404 in Google's words for another."""
    if model is None:
        raise GatewayError(
            404, f"models/{name[:200]} is not found for API version v1beta", code="model_not_found"
        )
    return web.json_response(entry(model))

"""GET /v1/models: the catalog, in the OpenAI list shape."""

from __future__ import annotations

from aiohttp import web

from edge.appkeys import SETTINGS
from edge.errors import GatewayError

OWNERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "google", "local": "edge"}


def _entry(model_id: str, owner: str, endpoints: list[str], canonical: str) -> dict[str, object]:
    return {
        "id": model_id,
        "object": "model",
        "created": 0,
        "owned_by": owner,
        "endpoints": endpoints,
        "canonical_id": canonical,
    }


async def list_models(request: web.Request) -> web.Response:
    """Every model the caller can call, by its id (other names are accepted but not listed): a
    model whose provider has no credentials on this gateway would only answer 503."""
    catalog = request.app[SETTINGS].catalog
    data = []
    for model in catalog.models:
        provider = catalog.provider_of(model)
        if not provider.configured:
            continue
        data.append(
            _entry(
                model.id, OWNERS.get(provider.kind, provider.name), list(model.endpoints), model.id
            )
        )
    return web.json_response({"object": "list", "data": data})


async def get_model(request: web.Request) -> web.Response:
    """GET /v1/models/{model}."""
    catalog = request.app[SETTINGS].catalog
    model = catalog.resolve(request.match_info["model"])
    if model is None:
        raise GatewayError(
            404,
            f"The model '{request.match_info['model']}' does not exist",
            code="model_not_found",
            param="model",
        )
    provider = catalog.provider_of(model)
    return web.json_response(
        _entry(model.id, OWNERS.get(provider.kind, provider.name), list(model.endpoints), model.id)
    )

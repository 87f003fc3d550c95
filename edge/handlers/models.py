"""GET /v1/models: the catalog the caller can call, in the caller's API's list shape (OpenAI's;
Anthropic's when the caller sends `anthropic-version` or calls the Anthropic prefix; Google's
when the Google SDK calls `/v1/models`, see `edge.handlers.gemini_models`)."""

from __future__ import annotations

from aiohttp import web

from edge.appkeys import SETTINGS
from edge.context import ctx_of
from edge.errors import ApiShape, GatewayError
from edge.fallback import model_not_allowed
from edge.handlers import gemini_models
from edge.model_access import caller_access
from edge.route_table import facts_of
from policies.access import UNRESTRICTED, Access
from policies.catalog import ENDPOINTS, Catalog, Endpoint, Model

OWNERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "google", "local": "edge"}
# A release time the catalog does not know: Anthropic's documented placeholder is the epoch.
EPOCH = "1970-01-01T00:00:00Z"
ANTHROPIC_PAGE = 20  # Anthropic's default page size
MAX_ANTHROPIC_PAGE = 1000
# Headers only the Google SDK sends: its `/v1/models` calls get Google's shape.
GOOGLE_HEADERS = ("x-goog-api-key", "x-goog-api-client")
GEMINI_APIS: tuple[Endpoint, ...] = ("gemini", "embeddings")  # what Google's API can call


def callable_models(
    catalog: Catalog,
    endpoints: tuple[Endpoint, ...] | None = None,
    access: Access = UNRESTRICTED,
) -> list[Model]:
    """The models a caller can call (from one of `endpoints`, if given): those its access lists
    allow, from a client API they allow, whose provider is configured here (any other would
    only answer 503)."""
    apis = tuple(e for e in endpoints or ENDPOINTS if access.allows_endpoint(e))
    return [
        model
        for model in catalog.models
        if catalog.provider_of(model).configured
        and any(model.allows(e) for e in apis)
        and access.allows_model(model)
    ]


def client_api(request: web.Request) -> ApiShape:
    """Whose list shape the caller reads: its route's API, else (on `/v1`, shared by the three
    SDKs) what its headers say. The caller's errors then take that shape too."""
    shape = facts_of(request).shape
    if shape == "openai":
        if "anthropic-version" in request.headers:
            shape = "anthropic"
        elif any(name in request.headers for name in GOOGLE_HEADERS):
            shape = "gemini"
    ctx_of(request).shape = shape
    return shape


def _owner(catalog: Catalog, model: Model) -> str:
    provider = catalog.provider_of(model)
    return OWNERS.get(provider.kind, provider.name)


def _entry(model: Model, owner: str) -> dict[str, object]:
    return {
        "id": model.id,
        "object": "model",
        "created": 0,
        "owned_by": owner,
        "endpoints": list(model.endpoints),
        "canonical_id": model.id,
    }


def _anthropic_entry(model: Model) -> dict[str, object]:
    entry: dict[str, object] = {
        "type": "model",
        "id": model.id,
        "display_name": model.id,
        "created_at": EPOCH,
        "lifecycle": "active",
    }
    if model.max_output_tokens:
        entry["max_tokens"] = model.max_output_tokens
    return entry


def _page_size(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return ANTHROPIC_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ANTHROPIC_PAGE:
        raise GatewayError(400, f"limit: must be an integer from 1 to {MAX_ANTHROPIC_PAGE}")
    return int(raw)


def _position(ids: list[str], name: str, param: str) -> int:
    if name not in ids:
        raise GatewayError(400, f"{param}: no model '{name[:200]}' in the list", param=param)
    return ids.index(name)


def _anthropic_page(request: web.Request, models: list[Model]) -> dict[str, object]:
    """A page of Anthropic's list: `limit`, then `after_id` or `before_id` as Anthropic pages."""
    limit = _page_size(request)
    ids = [model.id for model in models]
    before, after = request.query.get("before_id"), request.query.get("after_id")
    if before is not None:
        end = _position(ids, before, "before_id")
        start = max(0, end - limit)
        has_more = start > 0
    else:
        start = _position(ids, after, "after_id") + 1 if after is not None else 0
        end = min(len(ids), start + limit)
        has_more = end < len(ids)
    page = [_anthropic_entry(model) for model in models[start:end]]
    return {
        "data": page,
        "has_more": has_more,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }


async def list_models(request: web.Request) -> web.Response:
    """Every model the caller can call, by its id (other names are accepted but not listed)."""
    catalog = request.app[SETTINGS].catalog
    api = client_api(request)
    access = await caller_access(request, ctx_of(request))
    if api == "anthropic":
        listed = callable_models(catalog, ("messages",), access)
        return web.json_response(_anthropic_page(request, listed))
    if api == "gemini":
        return gemini_models.model_list(request, callable_models(catalog, GEMINI_APIS, access))
    listed = callable_models(catalog, None, access)
    data = [_entry(model, _owner(catalog, model)) for model in listed]
    return web.json_response({"object": "list", "data": data})


async def get_model(request: web.Request) -> web.Response:
    """GET /v1/models/{model}."""
    catalog = request.app[SETTINGS].catalog
    name = request.match_info["model"]
    api = client_api(request)
    model = catalog.resolve(name)
    access = await caller_access(request, ctx_of(request))
    if model is not None and not access.allows_model(model):
        raise model_not_allowed(name, model.id)
    if api == "gemini":
        listed = model is not None and model in callable_models(catalog, GEMINI_APIS, access)
        return gemini_models.one_model(model if listed else None, name)
    if api == "anthropic":
        if model is None or model not in callable_models(catalog, ("messages",), access):
            raise GatewayError(404, f"model: {name[:200]}", code="model_not_found")
        return web.json_response(_anthropic_entry(model))
    if model is None:
        raise GatewayError(
            404, f"The model '{name}' does not exist", code="model_not_found", param="model"
        )
    return web.json_response(_entry(model, _owner(catalog, model)))

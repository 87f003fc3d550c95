"""From a requested model name to the model, its provider and the wire API to call it with."""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import GatewayError
from policies.catalog import Catalog, Endpoint, Model, Provider, WireApi

UNKNOWN_MODEL = "unknown model"
WRONG_ENDPOINT = "model is not available on this endpoint"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes."""

    model: Model
    provider: Provider
    client_api: Endpoint
    upstream_api: WireApi

    @property
    def passthrough(self) -> bool:
        """Same API on both sides (and a real upstream): bytes pass through unchanged."""
        return self.provider.kind != "local" and self.upstream_api == self.client_api


def unknown_model(catalog: Catalog, name: str) -> GatewayError:
    """400 naming the model, the closest catalog ids, and where the list is."""
    close = catalog.suggestions(name)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return GatewayError(
        400,
        f"{UNKNOWN_MODEL} '{name[:200]}'.{hint} GET /v1/models lists the models you can call.",
        param="model",
        code="invalid_model",
    )


def resolve_route(catalog: Catalog, name: object, endpoint: Endpoint) -> Route:
    """Resolve a model name for a client API; 400 for unknown or misplaced models."""
    if not isinstance(name, str) or not name:
        raise GatewayError(400, "model is required", param="model", code="missing_parameter")
    model = catalog.resolve(name)
    if model is None:
        raise unknown_model(catalog, name)
    if not model.allows(endpoint):
        raise GatewayError(400, WRONG_ENDPOINT, param="model", code="model_not_available")
    provider = catalog.provider_of(model)
    if not provider.configured:
        raise GatewayError(
            503,
            f"model {model.id} is unavailable: its provider '{provider.name}' is not configured "
            "on this gateway",
            param="model",
            code="provider_not_configured",
            # An operator's configuration problem: no retry fixes it, and it is no overload.
            type="configuration_error",
            retry=False,
        )
    return Route(
        model=model,
        provider=provider,
        client_api=endpoint,
        upstream_api=provider.upstream_api(endpoint),
    )

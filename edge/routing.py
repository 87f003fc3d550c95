"""From a requested model name to the model, its provider and the wire API to call it with."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from edge.errors import GatewayError
from policies.catalog import Catalog, Endpoint, Model, Provider, WireApi
from policies.deployments import Deployment

UNKNOWN_MODEL = "unknown model"
WRONG_ENDPOINT = "model is not available on this endpoint"
# JSON's names for what a parsed body can hold, as the providers' own type errors name them.
JSON_KINDS = {bool: "a boolean", int: "an integer", float: "a number", list: "an array"}


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes."""

    model: Model
    provider: Provider
    client_api: Endpoint
    upstream_api: WireApi
    # The model's deployments this call may use, one route each (`model.provider` and
    # `model.upstream` being that deployment's), this route being the first; a model on one
    # provider has none, and is this route.
    choices: tuple[DeploymentRoute, ...] = ()

    @property
    def passthrough(self) -> bool:
        """Same API on both sides (and a real upstream): bytes pass through unchanged."""
        return self.provider.kind != "local" and self.upstream_api == self.client_api

    @property
    def balanced(self) -> bool:
        """Whether the call chooses among several deployments."""
        return len(self.choices) > 1


@dataclass(frozen=True, slots=True)
class DeploymentRoute:
    """One deployment of a model and the route that calls it."""

    deployment: Deployment
    route: Route


def _at(model: Model, deployment: Deployment, provider: Provider, endpoint: Endpoint) -> Route:
    served = model
    if (deployment.provider, deployment.upstream) != (model.provider, model.upstream):
        served = dataclasses.replace(
            model, provider=deployment.provider, upstream=deployment.upstream
        )
    return Route(served, provider, endpoint, provider.upstream_api(endpoint))


def with_choices(route: Route, choices: tuple[DeploymentRoute, ...]) -> Route:
    """The route of the first of `choices`, carrying them all (the caller may use these)."""
    return dataclasses.replace(choices[0].route, choices=choices if len(choices) > 1 else ())


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
    if name is None or name == "":
        raise GatewayError(400, "model is required", param="model", code="missing_parameter")
    if not isinstance(name, str):
        kind = JSON_KINDS.get(type(name), "an object")
        raise GatewayError(
            400,
            f"Invalid type for 'model': expected a string, but got {kind} instead.",
            param="model",
            code="invalid_type",
        )
    model = catalog.resolve(name)
    if model is None:
        raise unknown_model(catalog, name)
    if not model.allows(endpoint):
        raise GatewayError(400, WRONG_ENDPOINT, param="model", code="model_not_available")
    if model.deployments:
        return _balanced(catalog, model, endpoint)
    provider = catalog.provider_of(model)
    if not provider.configured:
        raise _not_configured(model, provider)
    return Route(
        model=model,
        provider=provider,
        client_api=endpoint,
        upstream_api=provider.upstream_api(endpoint),
    )


def _balanced(catalog: Catalog, model: Model, endpoint: Endpoint) -> Route:
    """A model with declared deployments: the route of its first usable one, carrying all."""
    usable = tuple(
        DeploymentRoute(d, _at(model, d, catalog.providers[d.provider], endpoint))
        for d in model.deployments
        if catalog.providers[d.provider].configured
    )
    if not usable:
        raise _not_configured(model, catalog.provider_of(model))
    return with_choices(usable[0].route, usable)


def _not_configured(model: Model, provider: Provider) -> GatewayError:
    return GatewayError(
        503,
        f"model {model.id} is unavailable: its provider '{provider.name}' is not configured "
        "on this gateway",
        param="model",
        code="provider_not_configured",
        # An operator's configuration problem: no retry fixes it, and it is no overload.
        type="configuration_error",
        retry=False,
    )

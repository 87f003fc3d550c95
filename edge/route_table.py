"""The one route table: each route is declared once with its facts (who may call it, its error
shape, whether and how it names a model), and middlewares and handlers read the facts of the
route aiohttp matched. Nothing else parses the path: a second reading that disagreed with the
router was how model calls slipped past admission."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from aiohttp.abc import AbstractView
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import AbstractResource, AbstractRoute

from edge.errors import ApiShape, GatewayError, shape_for_path
from edge.routing import Route
from policies.catalog import Endpoint

RouteKind = Literal["public", "admin", "inference"]
# Where a model call names its model: the JSON body's `model`, or the path (Gemini).
ModelFrom = Literal["body", "path"]
# Gemini model methods, and whether each streams. A route serves one group of them (its facts
# name its client API): generation, token counting (the generation API's companion, so a model
# callable from Gemini can be counted there), embeddings.
GEMINI_METHODS = {
    "generateContent": False,
    "streamGenerateContent": True,
    "countTokens": False,
    "embedContent": False,
    "batchEmbedContents": False,
}
GENERATE_METHODS = ("generateContent", "streamGenerateContent")
COUNT_METHODS = ("countTokens",)
EMBED_METHODS = ("embedContent", "batchEmbedContents")


def gemini_pattern(methods: tuple[str, ...]) -> str:
    """The `{target}` regex of a `{model}:{method}` path segment run, for these methods."""
    return rf"[^:]+:(?:{'|'.join(methods)})"


# A `{model}:{method}` path segment run whose method is a Gemini generation method.
GEMINI_TARGET = gemini_pattern(GENERATE_METHODS)
# After `models/`: anything but a counting or embedding method (those have their own routes),
# so an unknown method still reaches `gemini_target` and its 404 in Google's shape.
GEMINI_MODELS_TARGET = rf"(?!.*:(?:{'|'.join(COUNT_METHODS + EMBED_METHODS)})$).+"


@dataclass(frozen=True, slots=True)
class RouteFacts:
    """What the gateway needs to know about a route before its handler runs."""

    kind: RouteKind
    shape: ApiShape
    endpoint: Endpoint | None = None  # the client API, for a route that calls a model
    model_from: ModelFrom | None = None  # None: the route calls no model
    always_answered: bool = False  # probes and scrapes: answered when full or draining
    generates: bool = True  # False: the call generates no output (a token count, embeddings)
    # Google's SDK may send its key as `?key=`: read there on Gemini routes only, and only as
    # an invoke key (a credential in a URL lands in proxy and access logs).
    query_key: bool = False

    @property
    def calls_model(self) -> bool:
        """Whether the route calls a model (and so is admitted, metered and settled)."""
        return self.model_from is not None


PUBLIC = RouteFacts("public", "openai")
PROBE = RouteFacts("public", "openai", always_answered=True)
ADMIN = RouteFacts("admin", "openai")
CHAT = RouteFacts("inference", "openai", "chat", "body")
RESPONSES = RouteFacts("inference", "openai", "responses", "body")
MESSAGES = RouteFacts("inference", "anthropic", "messages", "body")
GEMINI = RouteFacts("inference", "gemini", "gemini", "path", query_key=True)
OPENAI_READ = RouteFacts("inference", "openai")  # stored responses, the model list
# Companion endpoints. Counting tokens is a call to the provider (Anthropic's and Gemini's own
# count), so it is admitted and settled like any model call, for the generation API it counts.
MESSAGES_COUNT = RouteFacts("inference", "anthropic", "messages", "body", generates=False)
GEMINI_COUNT = RouteFacts("inference", "gemini", "gemini", "path", generates=False, query_key=True)
EMBEDDINGS = RouteFacts("inference", "openai", "embeddings", "body", generates=False)
GEMINI_EMBED = RouteFacts(
    "inference", "gemini", "embeddings", "path", generates=False, query_key=True
)
ANTHROPIC_READ = RouteFacts("inference", "anthropic")  # the model list, Anthropic's shape
GEMINI_READ = RouteFacts("inference", "gemini", query_key=True)  # the model list, Google's shape

ROUTE_FACTS: web.AppKey[dict[AbstractRoute, RouteFacts]] = web.AppKey("edge.route_facts", dict)
_FACTS = web.RequestKey("edge.route_facts", RouteFacts)


def declare(
    app: web.Application,
    method: str,
    path: str,
    handler: Handler | type[AbstractView],
    facts: RouteFacts,
) -> None:
    """Register a route and its facts, once."""
    route = app.router.add_route(method, path, handler)
    table = app.get(ROUTE_FACTS)
    if table is None:
        table = app[ROUTE_FACTS] = {}
    table[route] = facts


def _unmatched(path: str) -> RouteFacts:
    """Facts for a path no route matched (a 404 or 405): only who answers it, and in what shape."""
    if path.startswith("/admin/"):
        return ADMIN
    return RouteFacts("inference", shape_for_path(path))


def facts_of(request: web.Request) -> RouteFacts:
    """The facts of the route the request matched (computed once per request)."""
    found = request.get(_FACTS)
    if found is None:
        table = request.app.get(ROUTE_FACTS)
        route = request.match_info.route
        found = (table.get(route) if table else None) or _unmatched(request.path)
        request[_FACTS] = found
    return found


def gemini_target(
    request: web.Request, methods: tuple[str, ...] = GENERATE_METHODS
) -> tuple[str, str, bool]:
    """(model, method, streamed) of a Gemini route's `{model}:{method}`; 404 for a method that is
    not one of `methods` (a handler names those it serves)."""
    target = request.match_info.get("target", "")
    model, sep, method = target.rpartition(":")
    if not sep or not model or method not in methods or method not in GEMINI_METHODS:
        raise GatewayError(404, f"Method '{method or target}' is not found for this endpoint.")
    return model.removeprefix("models/"), method, GEMINI_METHODS[method]


def admitted_routes(ctx_routes: list[Route]) -> list[Route]:
    """The chain the call was admitted for; a handler reached without one fails closed."""
    if not ctx_routes:
        raise GatewayError(500, "The call was not admitted.", code="not_admitted")
    return ctx_routes


def requested_model(request: web.Request, facts: RouteFacts, payload: object) -> object:
    """The model name a model call asks for, read where its route says it is."""
    if facts.model_from == "path":
        return gemini_target(request, tuple(GEMINI_METHODS))[0]
    return payload.get("model") if isinstance(payload, dict) else None


def _api_prefix(path: str) -> str:
    """The API prefix a path is under (`/v1`, `/v1beta`, `/ai-gateway/openai/v1`...)."""
    parts = path.split("/")
    if len(parts) > 3 and parts[1] == "ai-gateway":
        return "/".join(parts[:4])
    return "/".join(parts[:2])


def supported_routes(request: web.Request, limit: int = 24) -> list[str]:
    """The declared routes under the request's API prefix, for a 404 that says what exists."""
    prefix = _api_prefix(request.path)
    table = request.app.get(ROUTE_FACTS) or {}
    found = []
    for route, facts in table.items():
        resource = route.resource
        if resource is None or facts.kind == "public":
            continue
        if not resource.canonical.startswith(prefix + "/"):
            continue
        methods = target_methods(resource)
        shown = resource.canonical.replace("{target}", f"{{model}}:{'|'.join(methods)}")
        found.append(f"{route.method} {shown}")
    return list(dict.fromkeys(found))[:limit]


def target_methods(resource: AbstractResource) -> tuple[str, ...]:
    """The Gemini methods a `{model}:{method}` route accepts, read from its own pattern (none for
    a route without one)."""
    canonical = resource.canonical
    pattern = resource.get_info().get("pattern")
    if "{target}" not in canonical or pattern is None:
        return ()
    return tuple(
        method
        for method in GEMINI_METHODS
        if pattern.fullmatch(canonical.replace("{target}", f"m:{method}"))
    )

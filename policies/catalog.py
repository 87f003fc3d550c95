"""The model catalog: which models exist, who serves them, where they are callable, their price."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from policies.deployments import Deployment, DeploymentError, parse_deployments

Endpoint = Literal["chat", "responses", "messages", "gemini", "embeddings"]
ENDPOINTS: tuple[Endpoint, ...] = ("chat", "responses", "messages", "gemini", "embeddings")
# The client APIs that generate text: a model that declares no `endpoints` is callable from
# these (an embedding model declares `endpoints = ["embeddings"]`).
GENERATION_ENDPOINTS: tuple[Endpoint, ...] = ("chat", "responses", "messages", "gemini")
# A provider's wire APIs: the client APIs, plus Bedrock's Converse, which no client speaks.
WireApi = Literal["chat", "responses", "messages", "gemini", "embeddings", "converse"]
WIRE_APIS: tuple[WireApi, ...] = (*ENDPOINTS, "converse")
ProviderKind = Literal[
    "openai",
    "openai-compatible",
    "anthropic",
    "gemini",
    "azure-openai",
    "bedrock",
    "vertex",
    "local",
]
PROVIDER_KINDS: tuple[str, ...] = (
    "openai",
    "openai-compatible",
    "anthropic",
    "gemini",
    "azure-openai",
    "bedrock",
    "vertex",
    "local",
)
# The upstream wire APIs each provider kind can speak, in order of preference (`embeddings` is
# OpenAI's `POST /embeddings`; Gemini's embedding methods are part of its own API). A Vertex
# provider speaks one publisher's API: `gemini` (Google's models) or `messages` (Claude).
KIND_APIS: dict[str, tuple[WireApi, ...]] = {
    "openai": ("responses", "chat", "embeddings"),
    "openai-compatible": ("chat", "responses", "embeddings"),
    "anthropic": ("messages",),
    "gemini": ("gemini",),
    "azure-openai": ("responses", "chat"),
    "bedrock": ("converse",),
    "vertex": ("gemini",),
    "local": ("chat",),
}
# What each kind may declare as its `apis` (a subset, in the operator's order of preference).
KIND_ALLOWED_APIS: dict[str, tuple[WireApi, ...]] = {
    **KIND_APIS,
    "vertex": ("gemini", "messages"),
}
AZURE_AUTH = ("api-key", "entra")


class CatalogError(ValueError):
    """The catalog declaration is invalid."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float = 0.0
    output: float = 0.0
    cached_input: float | None = None

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        """Cost in USD of one call's usage."""
        cached = min(cached_tokens, input_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        return (
            (input_tokens - cached) * self.input
            + cached * cached_rate
            + output_tokens * self.output
        ) / 1_000_000


@dataclass(frozen=True, slots=True)
class Provider:
    """An upstream service and how to reach it; credentials are resolved from the environment."""

    name: str
    kind: ProviderKind
    apis: tuple[WireApi, ...]
    base_url: str | None
    api_key: str | None
    headers: Mapping[str, str] = field(default_factory=dict)
    # Azure OpenAI: "api-key" (the `api-key` header) or "entra" (the key is an Entra ID token,
    # sent as a bearer); with `api_version`, the deployment-path API instead of the v1 API.
    auth: str = "api-key"
    api_version: str | None = None
    # Bedrock: the AWS region (credentials come from the AWS chain when the call is made).
    region: str | None = None
    # Vertex AI: the project and location; a service-account file, else the environment's
    # application default credentials (workload identity).
    project: str | None = None
    location: str | None = None
    credentials_file: str | None = None

    @property
    def configured(self) -> bool:
        """True when the provider can be called (local needs nothing; others need a URL and key;
        Bedrock and Vertex a region or project, their credentials being found when called)."""
        if self.kind == "local":
            return True
        if self.kind == "openai-compatible":
            return self.base_url is not None
        if self.kind == "bedrock":
            return self.base_url is not None and self.region is not None
        if self.kind == "vertex":
            return None not in (self.base_url, self.project, self.location)
        return self.base_url is not None and self.api_key is not None

    def upstream_api(self, client_api: Endpoint) -> WireApi:
        """The wire API to use: the client's own when the provider speaks it (a passthrough),
        else the provider's preferred one of the same family (text generation or embeddings;
        Gemini's own API serves both)."""
        if client_api in self.apis:
            return client_api
        if client_api != "embeddings":
            generating = [api for api in self.apis if api != "embeddings"]
            return generating[0] if generating else self.apis[0]
        return self.apis[0]

    @property
    def embeds(self) -> bool:
        """Whether the provider can compute embeddings (OpenAI's API, Gemini's, or in process)."""
        return self.kind in ("local", "gemini") or "embeddings" in self.apis


@dataclass(frozen=True, slots=True)
class Model:
    """A catalog entry."""

    id: str
    provider: str
    upstream: str
    aliases: tuple[str, ...] = ()
    endpoints: tuple[Endpoint, ...] = GENERATION_ENDPOINTS
    price: Price = Price()
    description: str = ""
    fallbacks: tuple[str, ...] = ()
    max_output_tokens: int | None = None
    # Where it is served: empty for a model on one provider (`provider`, `upstream`).
    deployments: tuple[Deployment, ...] = ()

    def allows(self, endpoint: Endpoint) -> bool:
        """Whether the model may be called from this client API."""
        return endpoint in self.endpoints

    def served_by(self) -> tuple[Deployment, ...]:
        """Its deployments; a model on one provider has that one."""
        return self.deployments or (Deployment(self.provider, self.provider, self.upstream),)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Models by every accepted id, plus providers by name."""

    models: tuple[Model, ...]
    providers: Mapping[str, Provider]
    _index: Mapping[str, Model] = field(repr=False, default_factory=dict)

    def resolve(self, name: str) -> Model | None:
        """Find a model by any accepted name (case-insensitive); None when unknown.

        Accepted: its id, its aliases (dated snapshots are declared there), its provider's
        own name for it (`upstream`, when no other model shares it), each of those behind its
        provider's or its vendor's prefix (`openai/gpt-5.4`, `anthropic/claude-sonnet-4-6`),
        and any of them behind Google's `models/`."""
        key = name.lower()
        found = self._index.get(key)
        if found is None and key.startswith("models/"):
            found = self._index.get(key.removeprefix("models/"))
        return found

    def suggestions(self, name: str, limit: int = 3) -> list[str]:
        """The catalog ids closest to an unknown name, best first."""
        key = name.lower().removeprefix("models/")
        close = difflib.get_close_matches(key, list(self._index), n=limit * 4, cutoff=0.6)
        ids = list(dict.fromkeys(self._index[c].id for c in close))
        return ids[:limit]

    def provider_of(self, model: Model) -> Provider:
        """The provider serving a model."""
        return self.providers[model.provider]


def _str_tuple(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise CatalogError(f"{where}: expected a string or a list of strings")


def _endpoints(value: Any, where: str) -> tuple[Endpoint, ...]:
    names = _str_tuple(value, where)
    bad = [n for n in names if n not in ENDPOINTS]
    if bad or not names:
        raise CatalogError(f"{where}: endpoints must be a non-empty subset of {list(ENDPOINTS)}")
    # Declared order is kept: for a provider's `apis` it is the order of preference.
    return tuple(dict.fromkeys(names))  # type: ignore[arg-type]


def _apis(kind: str, raw: Any, where: str) -> tuple[WireApi, ...]:
    if raw is None:
        return KIND_APIS[kind]
    names = _str_tuple(raw, where)
    allowed = KIND_ALLOWED_APIS[kind] if kind in ("bedrock", "vertex") else WIRE_APIS
    if not names or any(n not in allowed for n in names):
        raise CatalogError(f"{where}: must be a non-empty subset of {list(allowed)}")
    if kind == "vertex" and len(names) > 1:
        # One publisher per provider: the model's URL and body follow its API.
        raise CatalogError(f'{where}: a vertex provider speaks one API: ["gemini"] or ["messages"]')
    return tuple(dict.fromkeys(names))  # type: ignore[arg-type]


def _setting(raw: Mapping[str, Any], env: Mapping[str, str], key: str, where: str) -> str | None:
    """`key` from the environment variables `{key}_env` names (the first set), else its value."""
    for var in _str_tuple(raw.get(f"{key}_env"), f"{where}.{key}_env"):
        if env.get(var):
            return env[var]
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise CatalogError(f"{where}.{key}: expected a string")
    return value


def _default_base_url(kind: str, region: str | None, location: str | None) -> str | None:
    """The public endpoint of a cloud provider whose URL follows its region or location."""
    if kind == "bedrock" and region:
        return f"https://bedrock-runtime.{region}.amazonaws.com"
    if kind == "vertex" and location:
        host = "aiplatform.googleapis.com"
        return f"https://{host}" if location == "global" else f"https://{location}-{host}"
    return None


def _provider(name: str, raw: Mapping[str, Any], env: Mapping[str, str]) -> Provider:
    where = f"providers.{name}"
    kind = raw.get("kind", "openai-compatible")
    if kind not in PROVIDER_KINDS:
        raise CatalogError(f"{where}.kind: must be one of {list(PROVIDER_KINDS)}")
    apis = _apis(kind, raw.get("apis"), f"{where}.apis")
    base_url = raw.get("base_url")
    for var in _str_tuple(raw.get("base_url_env"), f"{where}.base_url_env"):
        base_url = env.get(var) or base_url
    region = _setting(raw, env, "region", where)
    location = _setting(raw, env, "location", where)
    base_url = base_url or raw.get("default_base_url")
    base_url = base_url or _default_base_url(kind, region, location)
    api_key = raw.get("api_key")
    for var in _str_tuple(raw.get("api_key_env"), f"{where}.api_key_env"):
        if env.get(var):
            api_key = env[var]
            break
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise CatalogError(f"{where}.headers: expected a table of strings")
    auth = raw.get("auth", "api-key")
    if auth not in AZURE_AUTH:
        raise CatalogError(f"{where}.auth: must be one of {list(AZURE_AUTH)}")
    return Provider(
        name=name,
        kind=kind,
        apis=apis,
        base_url=base_url.rstrip("/") if isinstance(base_url, str) else None,
        api_key=api_key if isinstance(api_key, str) else None,
        headers=headers,
        auth=auth,
        api_version=_setting(raw, env, "api_version", where),
        region=region,
        project=_setting(raw, env, "project", where),
        location=location,
        credentials_file=_setting(raw, env, "credentials_file", where),
    )


def _model(raw: Mapping[str, Any], providers: Mapping[str, Provider], n: int) -> Model:
    where = f"models[{n}]"
    model_id = raw.get("id")
    if not isinstance(model_id, str) or not model_id:
        raise CatalogError(f"{where}.id: required string")
    deployments = _model_deployments(raw, providers, where, model_id)
    provider = deployments[0].provider if deployments else raw.get("provider")
    if provider not in providers:
        raise CatalogError(f"{where}.provider: unknown provider {provider!r}")
    price = raw.get("price", {})
    try:
        price_obj = Price(**price)
    except TypeError as exc:
        raise CatalogError(f"{where}.price: {exc}") from exc
    max_out = raw.get("max_output_tokens")
    return Model(
        id=model_id,
        provider=str(provider),
        upstream=deployments[0].upstream if deployments else str(raw.get("upstream", model_id)),
        aliases=_str_tuple(raw.get("aliases"), f"{where}.aliases"),
        endpoints=_endpoints(
            raw.get("endpoints", list(GENERATION_ENDPOINTS)), f"{where}.endpoints"
        ),
        price=price_obj,
        description=str(raw.get("description", "")),
        fallbacks=_str_tuple(raw.get("fallbacks"), f"{where}.fallbacks"),
        max_output_tokens=max_out if isinstance(max_out, int) else None,
        deployments=deployments,
    )


def _model_deployments(
    raw: Mapping[str, Any], providers: Mapping[str, Provider], where: str, model_id: str
) -> tuple[Deployment, ...]:
    """A model's `deployments`, each on a declared provider; () for a one-provider model."""
    if "deployments" not in raw:
        return ()
    if "provider" in raw:
        raise CatalogError(f"{where}: give either `provider` or `deployments`, not both")
    try:
        found = parse_deployments(
            raw["deployments"], f"{where}.deployments", str(raw.get("upstream", model_id))
        )
    except DeploymentError as exc:
        raise CatalogError(str(exc)) from exc
    for n, dep in enumerate(found):
        if dep.provider not in providers:
            raise CatalogError(
                f"{where}.deployments[{n}].provider: unknown provider {dep.provider!r}"
            )
    return found


def default_catalog_data() -> dict[str, Any]:
    """The packaged catalog declaration."""
    text = resources.files("policies").joinpath("catalog.toml").read_text("utf-8")
    return tomllib.loads(text)


def build_catalog(
    data: Mapping[str, Any], env: Mapping[str, str], extra: Mapping[str, Any] | None = None
) -> Catalog:
    """Build a catalog from a declaration merged with an operator's `extra` providers, models."""
    raw_providers = dict(data.get("providers", {}))
    raw_models = list(data.get("models", []))
    if extra:
        for name, prov in extra.get("providers", {}).items():
            raw_providers[name] = {**raw_providers.get(name, {}), **prov}
        override_ids = {m.get("id") for m in extra.get("models", [])}
        raw_models = [m for m in raw_models if m.get("id") not in override_ids]
        raw_models += list(extra.get("models", []))
    providers = {name: _provider(name, p, env) for name, p in raw_providers.items()}
    models = tuple(_model(m, providers, n) for n, m in enumerate(raw_models))
    for model in models:
        for deployment in model.served_by():
            _check_served(model, providers[deployment.provider])
    return Catalog(models=models, providers=providers, _index=_names(models))


def _check_served(model: Model, provider: Provider) -> None:
    """A model's endpoints must be ones its provider can serve: embeddings need a provider that
    computes them, text generation one that generates (in the catalog, not at the first call)."""
    if "embeddings" in model.endpoints and not provider.embeds:
        raise CatalogError(
            f"model {model.id!r}: provider {provider.name!r} serves no embeddings "
            '(add "embeddings" to its apis if it speaks OpenAI\'s POST /embeddings)'
        )
    generates = any(api != "embeddings" for api in provider.apis)
    if any(e != "embeddings" for e in model.endpoints) and not generates:
        raise CatalogError(
            f"model {model.id!r}: provider {provider.name!r} only serves embeddings; "
            'declare endpoints = ["embeddings"]'
        )


def _declared(models: tuple[Model, ...]) -> dict[str, Model]:
    """Ids and aliases: each names one model, or the catalog is invalid."""
    index: dict[str, Model] = {}
    for model in models:
        for name in (model.id, *model.aliases):
            key = name.lower()
            if key in index and index[key] is not model:
                raise CatalogError(f"model name {name!r} is declared twice")
            index[key] = model
    return index


def _derived(model: Model) -> set[str]:
    """The other names a client may use for a model: its provider's own name for it, and each
    name behind its provider's or its vendor's prefix (`openai/`, `google/`...)."""
    names = {model.id, model.upstream, *model.aliases}
    prefixes = {model.provider} | {a.split("/", 1)[0] for a in model.aliases if "/" in a}
    bare = set()
    for name in names:
        head, slash, rest = name.partition("/")
        bare.add(rest if slash and head in prefixes else name)
    out = {model.upstream} | {f"{p}/{b}" for p in prefixes for b in bare}
    return {n.lower() for n in out}


def _names(models: tuple[Model, ...]) -> dict[str, Model]:
    """Every accepted name: declared ones first; a derived name two models would share is
    left out rather than guessed."""
    index = _declared(models)
    derived: dict[str, Model | None] = {}
    for model in models:
        for name in _derived(model):
            if name in index:
                continue
            derived[name] = model if derived.get(name, model) is model else None
    index.update({name: model for name, model in derived.items() if model is not None})
    for model in models:
        for fb in model.fallbacks:
            if fb.lower() not in index:
                raise CatalogError(f"model {model.id!r}: unknown fallback {fb!r}")
    return index

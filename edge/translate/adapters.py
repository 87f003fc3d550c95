"""Which adapter speaks a route's upstream API: one per provider wire API, plus the
in-process model. Adding a provider with a new wire API is one adapter and one line here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from edge.errors import GatewayError
from edge.routing import Route
from edge.translate.anthropic_upstream import AnthropicUpstream
from edge.translate.bedrock_upstream import BedrockUpstream
from edge.translate.chat_upstream import ChatUpstream
from edge.translate.gemini_upstream import GeminiUpstream
from edge.translate.responses_upstream import ResponsesUpstream
from edge.translate.upstream import LocalEcho, ProviderAdapter

AdapterFactory = Callable[[], ProviderAdapter]
# By provider kind ("local") or upstream wire API.
ADAPTERS: Mapping[str, AdapterFactory] = MappingProxyType(
    {
        "local": LocalEcho,
        "chat": ChatUpstream,
        "messages": AnthropicUpstream,
        "gemini": GeminiUpstream,
        "responses": ResponsesUpstream,
        "converse": BedrockUpstream,
    }
)


def adapter_for(route: Route) -> ProviderAdapter:
    """The adapter that speaks a route's upstream API."""
    key = "local" if route.provider.kind == "local" else route.upstream_api
    factory = ADAPTERS.get(key)
    if factory is None:
        raise GatewayError(
            400,
            f"model {route.model.id} cannot be called through this API yet "
            f"(its provider speaks {route.upstream_api})",
            param="model",
            code="unsupported",
        )
    return factory()

"""The credentials and headers each provider kind expects on our calls to it."""

from __future__ import annotations

from collections.abc import Mapping

from policies.catalog import Provider

# Client headers that carry protocol choices (not identity) and so reach the provider.
_PASSED_CLIENT_HEADERS = ("openai-beta", "anthropic-beta", "anthropic-version")


def upstream_headers(provider: Provider, client_headers: Mapping[str, str]) -> dict[str, str]:
    """Headers for a call to `provider`: its credential, content type, chosen client headers."""
    headers = {"Content-Type": "application/json"}
    for name in _PASSED_CLIENT_HEADERS:
        value = client_headers.get(name)
        if value:
            headers[name] = value
    key = provider.api_key
    if provider.kind == "anthropic":
        headers.setdefault("anthropic-version", "2023-06-01")
        if key:
            headers["x-api-key"] = key
    elif provider.kind == "gemini":
        if key:
            headers["x-goog-api-key"] = key
    elif provider.kind == "azure-openai":
        # A resource key goes in `api-key`; an Entra ID access token is a bearer.
        if key and provider.auth == "entra":
            headers["Authorization"] = f"Bearer {key}"
        elif key:
            headers["api-key"] = key
    elif key:
        headers["Authorization"] = f"Bearer {key}"
    headers.update(provider.headers)
    return headers

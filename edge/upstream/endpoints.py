"""Where each provider kind serves each wire API: the URL of one call, from the provider's facts."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from policies.catalog import Provider

# Azure's v1 API (`/openai/v1/...`) takes the deployment as the body's `model`; the older
# deployment-path API puts it in the path and wants an `api-version` on every call. An Azure
# provider's `base_url` is its resource (`https://NAME.openai.azure.com`, as the SDK's
# AZURE_OPENAI_ENDPOINT), with or without `/openai/v1`.
_AZURE_V1 = "/openai/v1"


def path_part(name: str, safe: str = "") -> str:
    """A model, deployment or profile name (an ARN included) as one path segment."""
    return quote(name, safe=safe)


def _openai_root(provider: Provider) -> str:
    """The root the OpenAI paths hang under: Azure's v1 API, or the base URL as it is."""
    base = provider.base_url or ""
    if provider.kind != "azure-openai" or base.endswith(_AZURE_V1):
        return base
    return f"{base}{_AZURE_V1}"


def _azure_versioned(provider: Provider) -> str | None:
    """The deployment-path API's resource root and `api-version` query, when configured."""
    if provider.kind != "azure-openai" or provider.api_version is None:
        return None
    return (provider.base_url or "").removesuffix(_AZURE_V1)


def _version(provider: Provider) -> str:
    return f"api-version={quote(provider.api_version or '', safe='')}"


def chat_url(provider: Provider, model: str) -> str:
    """Chat Completions: `{base}/chat/completions`, or Azure's deployment path."""
    root = _azure_versioned(provider)
    if root is not None:
        return f"{root}/openai/deployments/{path_part(model)}/chat/completions?{_version(provider)}"
    return f"{_openai_root(provider)}/chat/completions"


def responses_url(provider: Provider) -> str:
    """Responses: `{base}/responses`, or Azure's `api-version`-qualified path."""
    root = _azure_versioned(provider)
    if root is not None:
        return f"{root}/openai/responses?{_version(provider)}"
    return f"{_openai_root(provider)}/responses"


def converse_url(provider: Provider, model: str, stream: bool) -> str:
    """Bedrock's Converse (or ConverseStream) for a model id, inference profile id or ARN."""
    method = "converse-stream" if stream else "converse"
    return f"{provider.base_url}/model/{path_part(model)}/{method}"


# Claude on Vertex AI names its API version in the body (the model is in the URL).
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"


def _vertex_url(provider: Provider, publisher: str, model: str, method: str) -> str:
    project, location = path_part(provider.project or ""), path_part(provider.location or "")
    where = f"{provider.base_url}/v1/projects/{project}/locations/{location}"
    # Vertex writes a Claude version as `claude-sonnet-4-5@20250929`: the `@` stays literal.
    return f"{where}/publishers/{publisher}/models/{path_part(model, safe='@')}:{method}"


def gemini_method_url(provider: Provider, model: str, method: str, sse: bool) -> str:
    """A Gemini model's method: Google AI's `/v1beta/models/...`, or Vertex AI's publisher path."""
    if provider.kind == "vertex":
        url = _vertex_url(provider, "google", model, method)
    else:
        url = f"{provider.base_url}/v1beta/models/{quote(model, safe='/.-_')}:{method}"
    return f"{url}?alt=sse" if sse else url


def messages_call_url(provider: Provider, model: str, stream: bool) -> str:
    """Anthropic's Messages, or Claude on Vertex AI (`rawPredict` / `streamRawPredict`)."""
    if provider.kind == "vertex":
        method = "streamRawPredict" if stream else "rawPredict"
        return _vertex_url(provider, "anthropic", model, method)
    return f"{provider.base_url}/v1/messages"


def for_vertex_claude(body: dict[str, Any]) -> dict[str, Any]:
    """A Messages body as Claude on Vertex wants it: no `model`, its `anthropic_version`."""
    out = {k: v for k, v in body.items() if k != "model"}
    out["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
    return out

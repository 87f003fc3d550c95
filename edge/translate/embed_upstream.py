"""Embeddings from a provider whose embedding API is not the client's, or in process: OpenAI's
`POST /embeddings` (OpenAI and compatible servers), Gemini's `batchEmbedContents`, `local/echo`.
The input tokens are the provider's count where it reports one, else the local estimate."""

from __future__ import annotations

from typing import Any

from edge.errors import GatewayError
from edge.translate.embeddings import EmbedRequest, EmbedResult, local_embed
from edge.translate.gemini_upstream import gemini_url
from edge.translate.token_estimate import texts_tokens
from edge.translate.upstream import UpstreamContext
from edge.translate.upstream_http import Forwarded, malformed, post_json, read_json
from edge.upstream.auth import upstream_headers
from edge.upstream.client import require_admitted


def openai_embeddings_url(base_url: str | None) -> str:
    """The embeddings endpoint under an OpenAI-style API root (as the OpenAI SDK builds it)."""
    return f"{base_url}/embeddings"


def estimated_input(req: EmbedRequest) -> int:
    """The local estimate of an embedding request's input (a token array counts its length)."""
    if req.token_arrays is not None:
        return sum(len(tokens) for tokens in req.token_arrays)
    return texts_tokens(req.texts)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _vector(value: Any) -> list[float]:
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise malformed("an embedding is not an array of numbers")
    return [float(v) for v in value]


def openai_vectors(answer: Any, count: int) -> list[list[float]]:
    """The vectors of an OpenAI embeddings answer, in input order."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or len(data) != count:
        raise malformed(f"expected {count} embeddings")
    by_index: dict[int, list[float]] = {}
    for position, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise malformed("an embedding is not an object")
        index = _count(entry.get("index"))
        by_index[position if index is None else index] = _vector(entry.get("embedding"))
    if sorted(by_index) != list(range(count)):
        raise malformed("the embeddings' indexes do not match the inputs")
    return [by_index[i] for i in range(count)]


def openai_input_tokens(answer: Any, req: EmbedRequest) -> int:
    """`usage.prompt_tokens`, else (a server that reports none) the local estimate."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    tokens = _count(usage.get("prompt_tokens")) if isinstance(usage, dict) else None
    return estimated_input(req) if tokens is None else tokens


def gemini_input_tokens(answer: Any, texts: list[str]) -> int:
    """`usageMetadata.promptTokenCount` where Gemini reports it (it does not for embeddings
    today), else the local estimate of the texts."""
    usage = answer.get("usageMetadata") if isinstance(answer, dict) else None
    tokens = _count(usage.get("promptTokenCount")) if isinstance(usage, dict) else None
    return texts_tokens(texts) if tokens is None else tokens


async def _openai(up: UpstreamContext, req: EmbedRequest) -> tuple[EmbedResult, Forwarded]:
    provider = up.route.provider
    body: dict[str, Any] = {
        "model": up.route.model.upstream,
        "input": req.token_arrays if req.token_arrays is not None else req.texts,
        "encoding_format": "float",
    }
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    url = openai_embeddings_url(provider.base_url)
    async with post_json(up, url, upstream_headers(provider, {}), body) as (resp, passed):
        answer = await read_json(resp, up.body_limit)
    vectors = openai_vectors(answer, req.count)
    return EmbedResult(vectors, openai_input_tokens(answer, req)), passed


async def _gemini(up: UpstreamContext, req: EmbedRequest) -> tuple[EmbedResult, Forwarded]:
    if req.token_arrays is not None:
        raise GatewayError(
            400,
            "Token arrays cannot be embedded by Gemini models: send the text.",
            param="input",
            code="unsupported",
        )
    provider, upstream = up.route.provider, up.route.model.upstream
    requests = []
    for text in req.texts:
        one: dict[str, Any] = {"model": f"models/{upstream}"}
        one["content"] = {"parts": [{"text": text}]}
        if req.dimensions is not None:
            one["outputDimensionality"] = req.dimensions
        requests.append(one)
    url = gemini_url(provider.base_url, upstream, "batchEmbedContents", sse=False)
    headers = upstream_headers(provider, {})
    async with post_json(up, url, headers, {"requests": requests}) as (resp, passed):
        answer = await read_json(resp, up.body_limit)
    embeddings = answer.get("embeddings") if isinstance(answer, dict) else None
    if not isinstance(embeddings, list) or len(embeddings) != len(req.texts):
        raise malformed(f"expected {len(req.texts)} embeddings")
    vectors = [_vector(e.get("values") if isinstance(e, dict) else None) for e in embeddings]
    return EmbedResult(vectors, gemini_input_tokens(answer, req.texts)), passed


async def embed(up: UpstreamContext, req: EmbedRequest) -> tuple[EmbedResult, Forwarded]:
    """The vectors of `req` from the route's provider, and the headers to forward."""
    route = up.route
    if route.provider.kind == "local":
        require_admitted(up.admitted)
        return local_embed(req), []
    if route.upstream_api == "embeddings":
        return await _openai(up, req)
    if route.upstream_api == "gemini":
        return await _gemini(up, req)
    # The catalog refuses an embedding model on a provider that computes none.
    raise GatewayError(
        400, f"model {route.model.id} cannot compute embeddings", param="model", code="unsupported"
    )

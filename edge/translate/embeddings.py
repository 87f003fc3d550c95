"""Embeddings in neutral terms: the texts to embed and the vectors that come back, read from and
written to OpenAI's `POST /v1/embeddings` and Gemini's `:embedContent` / `:batchEmbedContents`,
and made in process for `local/echo` (small deterministic vectors)."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from dataclasses import dataclass
from typing import Any

from edge.translate.common import invalid, opt_dict, opt_int, opt_list, opt_str, unsupported
from edge.translate.token_estimate import text_tokens

# OpenAI's cap on inputs per request; translated and in-process calls are held to it as well.
MAX_INPUTS = 2048
# The in-process model's vectors: this many dimensions unless asked for fewer or more, and at
# most MAX_LOCAL_DIMENSIONS (2,048 inputs of 256 numbers is about 5 MB of JSON).
LOCAL_DIMENSIONS = 8
MAX_LOCAL_DIMENSIONS = 256
ENCODINGS = ("float", "base64")


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """What to embed: one vector per input, in order."""

    texts: list[str]
    dimensions: int | None = None
    # OpenAI token arrays instead of texts: only a provider speaking OpenAI's API takes them.
    token_arrays: list[list[int]] | None = None

    @property
    def count(self) -> int:
        """How many vectors the answer holds."""
        return len(self.token_arrays) if self.token_arrays is not None else len(self.texts)


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """The vectors, in input order, and the input tokens they cost."""

    vectors: list[list[float]]
    input_tokens: int


def _token_array(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value
    )


def _inputs_cap(count: int, param: str) -> None:
    if count == 0:
        raise invalid(param, "at least one input")
    if count > MAX_INPUTS:
        raise invalid(param, f"at most {MAX_INPUTS} inputs")


def parse_openai_embeddings(payload: dict[str, Any]) -> EmbedRequest:
    """An OpenAI embeddings body; 400 naming the field when it is wrong."""
    raw = payload.get("input")
    dimensions = opt_int(payload, "dimensions", minimum=1)
    if isinstance(raw, str):
        raw = [raw]
    if _token_array(raw) and raw:
        raw = [raw]
    if not isinstance(raw, list):
        raise invalid("input", "a string, an array of strings or an array of token arrays")
    _inputs_cap(len(raw), "input")
    if all(isinstance(item, str) for item in raw):
        if any(not item for item in raw):
            raise invalid("input", "non-empty strings")
        return EmbedRequest(texts=list(raw), dimensions=dimensions)
    if all(_token_array(item) and item for item in raw):
        return EmbedRequest(texts=[], dimensions=dimensions, token_arrays=list(raw))
    raise invalid("input", "a string, an array of strings or an array of token arrays")


def openai_input_estimate(payload: dict[str, Any]) -> int:
    """The local estimate of an OpenAI embeddings body's input, read leniently (a relayed body is
    the provider's to judge): each text's estimate, each token array's length."""
    raw = payload.get("input")
    items = [raw] if isinstance(raw, str) or _token_array(raw) else raw
    total = 0
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str):
            total += text_tokens(item)
        elif isinstance(item, list):
            total += len(item)
    return total


def encoding_format(payload: dict[str, Any]) -> str:
    """The answer's `encoding_format` (OpenAI's default: float)."""
    value = opt_str(payload, "encoding_format") or "float"
    if value not in ENCODINGS:
        raise invalid("encoding_format", "'float' or 'base64'")
    return value


def _content_text(content: Any, at: str) -> str:
    if not isinstance(content, dict):
        raise invalid(at, "a Content object")
    parts = opt_list(content, "parts", f"{at}.") or []
    texts = []
    for part in parts:
        text = part.get("text") if isinstance(part, dict) else None
        if not isinstance(text, str):
            raise unsupported("An embedding part other than text", "for this model", at)
        texts.append(text)
    if not texts:
        raise invalid(f"{at}.parts", "at least one text part")
    return "\n".join(texts)


def _dimensions(request: dict[str, Any], at: str) -> int | None:
    names = ("outputDimensionality", "output_dimensionality")
    found = [opt_int(request, name, at, minimum=1) for name in names]
    return next((value for value in found if value is not None), None)


def parse_gemini_embed(payload: dict[str, Any], method: str) -> EmbedRequest:
    """A Gemini `embedContent` or `batchEmbedContents` body (each request's `content` texts;
    one `outputDimensionality` for all of them)."""
    if method == "embedContent":
        requests = [payload]
        where = [""]
    else:
        listed = opt_list(payload, "requests")
        if listed is None:
            raise invalid("requests", "an array of EmbedContentRequest objects")
        _inputs_cap(len(listed), "requests")
        requests = listed
        where = [f"requests[{i}]." for i in range(len(listed))]
    texts: list[str] = []
    dimensions: set[int] = set()
    for request, at in zip(requests, where, strict=True):
        if not isinstance(request, dict):
            raise invalid(at.rstrip(".") or "request", "an EmbedContentRequest object")
        content = opt_dict(request, "content", at)
        texts.append(_content_text(content, f"{at}content"))
        dims = _dimensions(request, at)
        if dims is not None:
            dimensions.add(dims)
    if len(dimensions) > 1:
        raise unsupported(
            "Different outputDimensionality values in one batch", "for this model", "requests"
        )
    return EmbedRequest(texts=texts, dimensions=next(iter(dimensions), None))


def gemini_texts(payload: Any, method: str) -> list[str]:
    """The texts of a Gemini embedding body, for the local input estimate (what cannot be read
    counts as nothing: the provider judges the body)."""
    requests = [payload] if method == "embedContent" else payload.get("requests")
    texts = []
    for request in requests if isinstance(requests, list) else []:
        content = request.get("content") if isinstance(request, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return texts


def _float32(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def render_openai(result: EmbedResult, model: str, encoding: str) -> dict[str, Any]:
    """An OpenAI `CreateEmbeddingResponse`."""
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": _float32(vector) if encoding == "base64" else vector,
        }
        for i, vector in enumerate(result.vectors)
    ]
    usage = {"prompt_tokens": result.input_tokens, "total_tokens": result.input_tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}


def render_gemini(result: EmbedResult, method: str) -> dict[str, Any]:
    """A Gemini `EmbedContentResponse` or `BatchEmbedContentsResponse`."""
    if method == "embedContent":
        return {"embedding": {"values": result.vectors[0]}}
    return {"embeddings": [{"values": vector} for vector in result.vectors]}


def _local_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector from the text's SHA-256 stream: the same text, the same vector."""
    raw: list[float] = []
    block = 0
    while len(raw) < dimensions:
        digest = hashlib.sha256(f"{block}:{text}".encode("utf-8", "surrogatepass")).digest()
        raw.extend((byte - 127.5) / 127.5 for byte in digest)
        block += 1
    vector = raw[:dimensions]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [round(v / norm, 6) for v in vector]


def local_embed(req: EmbedRequest) -> EmbedResult:
    """`local/echo`'s embeddings: deterministic vectors, one token per word (or per token of a
    token array), as `local/echo` counts its other calls."""
    dimensions = req.dimensions or LOCAL_DIMENSIONS
    if dimensions > MAX_LOCAL_DIMENSIONS:
        raise invalid("dimensions", f"at most {MAX_LOCAL_DIMENSIONS} for local/echo")
    if req.token_arrays is not None:
        texts = [" ".join(str(t) for t in tokens) for tokens in req.token_arrays]
        tokens = sum(len(tokens) for tokens in req.token_arrays)
    else:
        texts = req.texts
        tokens = sum(max(1, len(text.split())) for text in texts)
    return EmbedResult(vectors=[_local_vector(t, dimensions) for t in texts], input_tokens=tokens)

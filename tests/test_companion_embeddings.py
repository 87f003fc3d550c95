"""Embeddings through the official SDKs: OpenAI's `embeddings.create` and google-genai's
`models.embed_content`. Relayed byte for byte where the provider speaks the client's API,
computed through the provider's own embedding API otherwise, in process for `local/echo`;
metered by input tokens (the provider's count, else the local estimate) and admitted like
every model call."""

from __future__ import annotations

import asyncio
import base64
import math
import struct
from collections.abc import AsyncIterator

import openai
import orjson
import pytest
from google import genai
from google.genai import types

from tests.support.clock import Deadline
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import UPSTREAM_SECRET, Live, Tenant


@pytest.fixture
async def tenant(gateway: Live) -> Tenant:
    """A caller without limits."""
    return await gateway.tenant()


@pytest.fixture
async def oai(gateway: Live, tenant: Tenant) -> AsyncIterator[openai.AsyncOpenAI]:
    """The OpenAI SDK pointed at the gateway."""
    sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{gateway.url}/v1", max_retries=0)
    yield sdk
    await sdk.close()


@pytest.fixture
async def google(gateway: Live, tenant: Tenant) -> AsyncIterator[genai.Client]:
    """The Google Gen AI SDK pointed at the gateway."""
    options = types.HttpOptions(
        base_url=gateway.url, retry_options=types.HttpRetryOptions(attempts=1)
    )
    sdk = genai.Client(api_key=tenant.key, http_options=options)
    yield sdk
    await sdk.aio.aclose()


def _float32(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def _openai_answer(
    vectors: list[list[float]], prompt_tokens: int | None, encoded: bool = True
) -> bytes:
    """What OpenAI answers: base64 (what the SDK asks for unless told otherwise) or floats."""
    data = [
        {"object": "embedding", "index": i, "embedding": _float32(v) if encoded else v}
        for i, v in enumerate(vectors)
    ]
    body: dict[str, object] = {"object": "list", "data": data, "model": "text-embedding-3-small"}
    if prompt_tokens is not None:
        body["usage"] = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return orjson.dumps(body)


async def _usage_today(gateway: Live, key_id: str, requests: int) -> dict[str, int]:
    """The key's usage today, once `requests` calls have settled (bounded wait)."""
    deadline = Deadline(10)  # bounds the test's own waiting, not an assertion on speed
    while True:
        status, body = await gateway.admin("GET", f"/keys/{key_id}/usage")
        assert status == 200, body
        today: dict[str, int] = body["today"]
        if (today["requests"] >= requests and body["in_flight"] == 0) or deadline.passed():
            return today
        await asyncio.sleep(0.02)


def _close(got: list[float], want: list[float]) -> bool:
    return len(got) == len(want) and all(
        math.isclose(a, b, rel_tol=1e-6) for a, b in zip(got, want, strict=True)
    )


async def test_openai_embeddings_relayed_byte_for_byte_and_metered(
    oai: openai.AsyncOpenAI, gateway: Live, tenant: Tenant, fake: FakeUpstream
) -> None:
    answer = _openai_answer([[0.5, -0.25], [1.0, 0.0]], prompt_tokens=500_000)
    fake.push(Scenario(body=answer))
    raw = await oai.embeddings.with_raw_response.create(
        model="openai/text-embedding-3-small", input=["first text", "second"]
    )
    assert raw.content == answer  # the provider's bytes, untouched
    vectors = [d.embedding for d in raw.parse().data]
    assert vectors == [[0.5, -0.25], [1.0, 0.0]]
    seen = fake.requests[-1]
    assert seen.path == "/v1/embeddings"
    assert seen.body == {
        "model": "text-embedding-3-small",  # the catalog's upstream name
        "input": ["first text", "second"],
        "encoding_format": "base64",
    }
    assert seen.headers["Authorization"] == f"Bearer {UPSTREAM_SECRET}"
    today = await _usage_today(gateway, tenant.key_id, 1)
    assert (today["requests"], today["input_tokens"], today["output_tokens"]) == (1, 500_000, 0)
    assert today["cost_micros"] == 10_000  # $0.02 per million input tokens: one cent


async def test_a_server_that_reports_no_usage_is_charged_the_estimate(
    oai: openai.AsyncOpenAI, gateway: Live, tenant: Tenant, fake: FakeUpstream
) -> None:
    fake.push(Scenario(body=_openai_answer([[0.1]], prompt_tokens=None)))
    made = await oai.embeddings.create(model="text-embedding-3-large", input="x" * 40)
    assert _close(made.data[0].embedding, [0.1])
    today = await _usage_today(gateway, tenant.key_id, 1)
    assert today["input_tokens"] == 10  # a quarter of 40 bytes


async def test_local_echo_makes_small_deterministic_vectors(
    oai: openai.AsyncOpenAI, gateway: Live, tenant: Tenant
) -> None:
    first = await oai.embeddings.create(model="local/echo", input=["one two three", "four"])
    again = await oai.embeddings.create(
        model="echo", input="one two three", encoding_format="float"
    )
    wide = await oai.embeddings.create(model="local/echo", input="four", dimensions=16)
    assert [len(d.embedding) for d in first.data] == [8, 8]
    assert _close(first.data[0].embedding, again.data[0].embedding)  # base64 and float agree
    assert first.data[0].embedding != first.data[1].embedding
    assert math.isclose(sum(v * v for v in wide.data[0].embedding), 1.0, rel_tol=1e-4)
    assert len(wide.data[0].embedding) == 16
    assert first.usage.prompt_tokens == 4  # local/echo counts words
    assert first.model == "local/echo"
    today = await _usage_today(gateway, tenant.key_id, 3)
    assert today["input_tokens"] == 4 + 3 + 1


async def test_openai_sdk_on_a_gemini_embedding_model(
    oai: openai.AsyncOpenAI, gateway: Live, tenant: Tenant, fake: FakeUpstream
) -> None:
    answer = {"embeddings": [{"values": [0.25, 0.5]}, {"values": [0.75, 1.0]}]}
    fake.push(Scenario(body=orjson.dumps(answer)))
    made = await oai.embeddings.create(
        model="gemini-embedding-001", input=["alpha", "beta gamma"], dimensions=2
    )
    assert [d.embedding for d in made.data] == [[0.25, 0.5], [0.75, 1.0]]
    assert [d.index for d in made.data] == [0, 1]
    seen = fake.requests[-1]
    assert seen.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert seen.body == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": text}]},
                "outputDimensionality": 2,
            }
            for text in ("alpha", "beta gamma")
        ]
    }
    # Gemini reports no usage for embeddings: the local estimate, a quarter of each text's bytes.
    assert made.usage.prompt_tokens == math.ceil(5 / 4) + math.ceil(10 / 4)
    today = await _usage_today(gateway, tenant.key_id, 1)
    assert today["input_tokens"] == 2 + 3


async def test_google_sdk_embed_content_relayed_to_gemini(
    google: genai.Client, gateway: Live, tenant: Tenant, fake: FakeUpstream
) -> None:
    answer = orjson.dumps(
        {"embeddings": [{"values": [0.1, 0.2, 0.3]}, {"values": [0.4, 0.5, 0.6]}]}
    )
    fake.push(Scenario(body=answer))
    made = await google.aio.models.embed_content(
        model="google/gemini-embedding-001",
        contents=["What is your name?", "Blue"],
        config=types.EmbedContentConfig(output_dimensionality=3, task_type="RETRIEVAL_DOCUMENT"),
    )
    assert [e.values for e in made.embeddings or []] == [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]
    seen = fake.requests[-1]
    assert seen.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert seen.headers["x-goog-api-key"] == UPSTREAM_SECRET
    # The batch names Google's model, whatever name the client used.
    assert [r["model"] for r in seen.body["requests"]] == ["models/gemini-embedding-001"] * 2
    assert seen.body["requests"][0]["taskType"] == "RETRIEVAL_DOCUMENT"
    today = await _usage_today(gateway, tenant.key_id, 1)
    assert today["input_tokens"] == math.ceil(18 / 4) + math.ceil(4 / 4)


async def test_google_sdk_embed_content_on_openai_and_local_models(
    google: genai.Client, fake: FakeUpstream
) -> None:
    fake.push(Scenario(body=_openai_answer([[0.5, 0.5]], prompt_tokens=3, encoded=False)))
    made = await google.aio.models.embed_content(
        model="text-embedding-3-small", contents="hello there"
    )
    assert [e.values for e in made.embeddings or []] == [[0.5, 0.5]]
    seen = fake.requests[-1]
    assert seen.path == "/v1/embeddings"
    assert seen.body == {
        "model": "text-embedding-3-small",
        "input": ["hello there"],
        "encoding_format": "float",
    }
    local = await google.aio.models.embed_content(model="local/echo", contents=["a", "b"])
    assert [len(e.values or []) for e in local.embeddings or []] == [8, 8]
    assert len(fake.requests) == 1


async def test_embed_content_single_request(gateway: Live, tenant: Tenant) -> None:
    assert gateway.http is not None
    async with gateway.http.post(
        f"{gateway.url}/v1beta/models/local/echo:embedContent",
        json={"content": {"parts": [{"text": "same"}]}, "outputDimensionality": 4},
        headers={"x-goog-api-key": tenant.key},
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert len(body["embedding"]["values"]) == 4


async def test_a_request_rate_limit_applies_to_embeddings(
    gateway: Live, fake: FakeUpstream
) -> None:
    tenant = await gateway.tenant(quota={"requests_per_minute": 3})
    sdk = openai.AsyncOpenAI(api_key=tenant.key, base_url=f"{gateway.url}/v1", max_retries=0)
    try:
        for _ in range(3):
            fake.push(Scenario(body=_openai_answer([[0.5]], prompt_tokens=1)))
            await sdk.embeddings.create(model="text-embedding-3-small", input="hi")
        with pytest.raises(openai.RateLimitError) as refused:
            await sdk.embeddings.create(model="text-embedding-3-small", input="hi")
        assert refused.value.response.headers.get("Retry-After")
        assert refused.value.body["code"] == "REQUEST_LIMIT_EXCEEDED"  # type: ignore[index]
    finally:
        await sdk.close()
    assert len(fake.requests) == 3  # the refused call never reached the provider
    today = await _usage_today(gateway, tenant.key_id, 3)
    assert (today["requests"], today["input_tokens"]) == (3, 3)


async def test_embedding_and_text_models_stay_on_their_endpoints(
    oai: openai.AsyncOpenAI, fake: FakeUpstream
) -> None:
    with pytest.raises(openai.BadRequestError) as chat:
        await oai.chat.completions.create(
            model="text-embedding-3-small", messages=[{"role": "user", "content": "hi"}]
        )
    assert "not available on this endpoint" in str(chat.value)
    with pytest.raises(openai.BadRequestError) as embed:
        await oai.embeddings.create(model="gpt-5-4", input="hi")
    assert "not available on this endpoint" in str(embed.value)
    with pytest.raises(openai.BadRequestError) as empty:
        await oai.embeddings.create(model="local/echo", input=[])
    assert "input" in str(empty.value)
    assert fake.requests == []

"""Our own quota refusal carries REQUEST_LIMIT_EXCEEDED in every API's error shape (and any
error code travels in each shape the same way), and each official SDK still reads it."""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from edge.body import TOO_LARGE
from edge.errors import BODY_TOO_LARGE, ERROR_INFO, RETRY_INFO, GatewayError, error_body
from edge.quota.denials import BUDGET_UNAVAILABLE
from tests.support.gateway import Live

CODE = "REQUEST_LIMIT_EXCEEDED"
ONE_PER_MINUTE = {"requests_per_minute": 1}
MESSAGES_BODY = {
    "model": "local/echo",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hello"}],
}
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


async def _post(
    http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str]
) -> tuple[int, dict[str, str], Any]:
    async with http.post(url, json=body, headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


async def test_messages_quota_429_carries_the_code_in_anthropic_shape(gateway: Live) -> None:
    tenant = await gateway.tenant(quota=ONE_PER_MINUTE)
    assert gateway.http is not None
    url, headers = f"{gateway.url}/v1/messages", {"x-api-key": tenant.key}
    first = await _post(gateway.http, url, MESSAGES_BODY, headers)
    assert first[0] == 200, first[2]
    status, answer_headers, body = await _post(gateway.http, url, MESSAGES_BODY, headers)
    assert status == 429
    assert body["type"] == "error"
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["code"] == CODE
    assert "1 requests per minute" in body["error"]["message"]
    assert 1 <= int(answer_headers["Retry-After"]) <= 60


@pytest.mark.parametrize(
    "path",
    [
        "/v1beta/models/local-echo:generateContent",
        "/ai-gateway/gemini/v1beta/models/local-echo:generateContent",
    ],
)
async def test_gemini_quota_429_carries_the_code_in_google_shape(gateway: Live, path: str) -> None:
    tenant = await gateway.tenant(quota=ONE_PER_MINUTE)
    assert gateway.http is not None
    url, headers = f"{gateway.url}{path}", {"x-goog-api-key": tenant.key}
    first = await _post(gateway.http, url, GEMINI_BODY, headers)
    assert first[0] == 200, first[2]
    status, answer_headers, body = await _post(gateway.http, url, GEMINI_BODY, headers)
    assert status == 429
    error = body["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    info = [d for d in error["details"] if d["@type"] == ERROR_INFO]
    assert info == [{"@type": ERROR_INFO, "reason": CODE, "domain": "edge"}]
    seconds = int(answer_headers["Retry-After"])
    assert 1 <= seconds <= 60
    retry = [d for d in error["details"] if d["@type"] == RETRY_INFO]
    assert retry == [{"@type": RETRY_INFO, "retryDelay": f"{seconds}s"}]


async def test_anthropic_sdk_raises_rate_limit_error_with_the_code(gateway: Live) -> None:
    tenant = await gateway.tenant(quota=ONE_PER_MINUTE)
    sdk = anthropic.AsyncAnthropic(api_key=tenant.key, base_url=gateway.url, max_retries=0)
    try:
        await sdk.messages.create(**MESSAGES_BODY)  # type: ignore[call-overload]
        with pytest.raises(anthropic.RateLimitError) as info:
            await sdk.messages.create(**MESSAGES_BODY)  # type: ignore[call-overload]
    finally:
        await sdk.close()
    assert info.value.status_code == 429
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["code"] == CODE
    assert int(info.value.response.headers["retry-after"]) >= 1


async def test_google_sdk_raises_its_429_error_with_the_reason(gateway: Live) -> None:
    tenant = await gateway.tenant(quota=ONE_PER_MINUTE)
    options = types.HttpOptions(
        base_url=gateway.url, retry_options=types.HttpRetryOptions(attempts=1)
    )
    sdk = genai.Client(api_key=tenant.key, http_options=options)
    try:
        await sdk.aio.models.generate_content(model="local-echo", contents="hello")
        with pytest.raises(genai_errors.ClientError) as info:
            await sdk.aio.models.generate_content(model="local-echo", contents="hello")
    finally:
        await sdk.aio.aclose()
    assert (info.value.code, info.value.status) == (429, "RESOURCE_EXHAUSTED")
    details = info.value.details["error"]["details"]
    assert {"@type": ERROR_INFO, "reason": CODE, "domain": "edge"} in details


def test_every_shape_carries_any_code() -> None:
    err = GatewayError(400, "unknown model", code="invalid_model", param="model")
    assert error_body("openai", err)["error"] == {
        "message": "unknown model",
        "type": "invalid_request_error",
        "param": "model",
        "code": "invalid_model",
    }
    assert error_body("anthropic", err) == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "unknown model",
            "code": "invalid_model",
        },
    }
    assert error_body("gemini", err) == {
        "error": {
            "code": 400,
            "message": "unknown model",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": ERROR_INFO, "reason": "invalid_model", "domain": "edge"}],
        }
    }


def test_no_code_adds_no_field() -> None:
    err = GatewayError(502, "cut")
    assert error_body("anthropic", err) == {
        "type": "error",
        "error": {"type": "api_error", "message": "cut"},
    }
    assert error_body("gemini", err) == {
        "error": {"code": 502, "message": "cut", "status": "UNAVAILABLE"}
    }


def test_a_retry_after_becomes_google_retry_info() -> None:
    details = error_body("gemini", BUDGET_UNAVAILABLE)["error"]
    assert isinstance(details, dict)
    assert details["details"] == [
        {"@type": ERROR_INFO, "reason": "quota_unavailable", "domain": "edge"},
        {"@type": RETRY_INFO, "retryDelay": "1s"},
    ]


def test_connection_closing_refusals_keep_anthropics_own_body() -> None:
    assert error_body("anthropic", TOO_LARGE) == {
        "type": "error",
        "error": {"type": "request_too_large", "message": BODY_TOO_LARGE},
    }
    google = error_body("gemini", TOO_LARGE)["error"]
    assert isinstance(google, dict)
    assert google["details"] == [
        {"@type": ERROR_INFO, "reason": "request_too_large", "domain": "edge"}
    ]

"""Credentials in bytes that are not ASCII (latin-1, or not text at all) are wrong credentials:
401 in the caller's API shape, never a 500. aiohttp keeps such bytes as surrogates, which the
key, admin-token and metrics-token checks used to encode and fail on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from edge.handlers.metrics import create_metrics_app
from edge.server import make_runner
from tests.support.gateway import (
    ADMIN_TOKEN,
    Live,
    gateway_env,
    settings_for,
    start_live,
    stop_live,
)
from tests.support.ports import free_port
from tests.support.rawhttp import RawAnswer, exchange

METRICS_TOKEN = "metrics-token-0123456789abcdef"
# A stranger's bytes: latin-1 text, bytes that are not text, and UTF-8 that is not ASCII.
VALUES = [b"caf\xe9", b"\xff\xfe\x80", "clé-ünïcode".encode()]
HEADERS = [b"Authorization: Bearer ", b"Authorization: ", b"x-api-key: ", b"x-goog-api-key: "]
ROUTES = {
    "openai": b"POST /v1/chat/completions",
    "anthropic": b"POST /v1/messages",
    "gemini": b"POST /v1beta/models/gpt-5-4:generateContent",
    "admin": b"GET /admin/v1/accounts",
}


@pytest.fixture
async def live(store_url: str) -> AsyncIterator[Live]:
    """A gateway with a metrics token, serving /metrics on its client port."""
    env = gateway_env(store_url, None, EDGE_METRICS_TOKEN=METRICS_TOKEN)
    gateway = await start_live(settings_for(env))
    yield gateway
    await stop_live(gateway)


def raw_request(line: bytes, header: bytes) -> bytes:
    body = b'{"model":"gpt-5-4","messages":[{"role":"user","content":"hi"}]}'
    head = [line + b" HTTP/1.1", b"Host: localhost", header]
    if line.startswith(b"POST"):
        head += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
        return b"\r\n".join(head) + b"\r\n\r\n" + body
    return b"\r\n".join(head) + b"\r\n\r\n"


def unauthorized(shape: str, answer: RawAnswer) -> bool:
    """A 401 in the route's own error shape."""
    body = answer.json()
    assert isinstance(body, dict)
    if answer.status != 401:
        return False
    if shape == "anthropic":
        return body["type"] == "error" and body["error"]["type"] == "authentication_error"
    if shape == "gemini":
        return body["error"]["status"] == "UNAUTHENTICATED"
    return body["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("value", VALUES, ids=["latin-1", "not-text", "utf-8"])
@pytest.mark.parametrize("header", HEADERS, ids=["bearer", "bare", "x-api-key", "x-goog"])
async def test_non_ascii_credentials_are_401_in_the_callers_shape(
    live: Live, header: bytes, value: bytes
) -> None:
    for shape, line in ROUTES.items():
        answer = await exchange(live.url, raw_request(line, header + value))
        assert unauthorized(shape, answer), (shape, answer)


async def test_a_non_ascii_key_beside_a_valid_one_is_passed_over(live: Live) -> None:
    """A latin-1 x-api-key does not spoil the valid bearer key the same request carries."""
    tenant = await live.tenant()
    admin = b"x-api-key: caf\xe9\r\nAuthorization: Bearer " + ADMIN_TOKEN.encode()
    answer = await exchange(live.url, raw_request(ROUTES["admin"], admin))
    assert answer.status == 200, answer
    raw = raw_request(
        b"GET /v1/models", b"x-api-key: \xff\r\nAuthorization: Bearer " + tenant.key.encode()
    )
    assert (await exchange(live.url, raw)).status == 200


async def test_a_key_shaped_credential_with_latin1_bytes_is_401(live: Live) -> None:
    tenant = await live.tenant()
    forged = tenant.key.encode()[:-2] + b"\xe9\xe9"
    answer = await exchange(live.url, raw_request(ROUTES["openai"], b"x-api-key: " + forged))
    assert unauthorized("openai", answer), answer


async def test_a_key_in_the_query_that_is_not_utf8_is_401(live: Live) -> None:
    line = b"POST /v1beta/models/gpt-5-4:generateContent?key=caf%E9%FF"
    answer = await exchange(live.url, raw_request(line, b"X-Pad: 1"))
    assert unauthorized("gemini", answer), answer


@pytest.mark.parametrize("value", VALUES, ids=["latin-1", "not-text", "utf-8"])
async def test_a_non_ascii_metrics_token_is_401(live: Live, value: bytes) -> None:
    """On the client port (`--metrics-port same`) and on the metrics port alike."""
    assert live.app is not None
    metrics_runner = make_runner(create_metrics_app(live.app))
    await metrics_runner.setup()
    port = free_port()
    await web.TCPSite(metrics_runner, "127.0.0.1", port).start()
    try:
        for url in (live.url, f"http://127.0.0.1:{port}"):
            for header in (b"Authorization: Bearer ", b"Authorization: "):
                answer = await exchange(url, raw_request(b"GET /metrics", header + value))
                assert unauthorized("openai", answer), (url, answer)
            good = f"Authorization: Bearer {METRICS_TOKEN}".encode()
            answer = await exchange(url, raw_request(b"GET /metrics", good))
            assert answer.status == 200 and b"edge_requests" in answer.body, (url, answer)
    finally:
        await metrics_runner.cleanup()

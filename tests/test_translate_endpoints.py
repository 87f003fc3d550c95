"""The Messages and Gemini endpoints over HTTP: mounts, credentials, headers, error shapes,
unsupported features and Gemini's two stream framings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from tests.support.clock import stamp, wait_until
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import (
    UPSTREAM_SECRET,
    Live,
    Tenant,
    gateway_env,
    settings_for,
    start_live,
    stop_live,
)
from tests.support.readers import read_gemini_array
from tests.support.recordings import recordings

ANTHROPIC = {r.name: r for r in recordings("anthropic")}
GEMINI = {r.name: r for r in recordings("gemini")}
MESSAGE = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}
CONTENTS = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
LIMITS = {"anthropic-ratelimit-requests-remaining": "4", "retry-after": "2"}


@pytest.fixture
async def gw(fake: FakeUpstream) -> AsyncIterator[Live]:
    """A gateway on the embedded store."""
    live = await start_live(settings_for(gateway_env("memory://", fake.url)))
    yield live
    await stop_live(live)


@pytest.fixture
async def tenant(gw: Live) -> Tenant:
    """An account with an invoke key."""
    return await gw.tenant()


async def _post(
    gw: Live, path: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    assert gw.http is not None
    async with gw.http.post(f"{gw.url}{path}", json=body, headers=headers or {}) as resp:
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read()


async def test_messages_passthrough_keeps_bytes_and_protocol_headers(
    gw: Live, fake: FakeUpstream, tenant: Tenant
) -> None:
    rec = ANTHROPIC["anthropic-text.chunks.txt"]
    fake.push(Scenario(recording=rec, headers=LIMITS))
    headers = {
        "x-api-key": tenant.key,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "interleaved-thinking-2025-05-14",
    }
    status, got, raw = await _post(
        gw, "/ai-gateway/anthropic/v1/messages", {**MESSAGE, "stream": True}, headers
    )
    assert status == 200 and raw == rec.wire()
    assert got["anthropic-ratelimit-requests-remaining"] == "4"
    seen = fake.requests[-1]
    assert seen.path == "/v1/messages" and seen.headers["x-api-key"] == UPSTREAM_SECRET
    assert seen.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert seen.body["model"] == "claude-sonnet-4-6"


async def test_translated_answers_forward_rate_limit_headers(
    gw: Live, fake: FakeUpstream, tenant: Tenant
) -> None:
    fake.push(Scenario(recording=ANTHROPIC["anthropic-text.chunks.txt"], headers=LIMITS))
    auth = {"Authorization": f"Bearer {tenant.key}"}
    body = {
        "model": "claude-sonnet-4-6",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    status, got, _ = await _post(gw, "/v1/chat/completions", body, auth)
    assert status == 200
    assert (got["anthropic-ratelimit-requests-remaining"], got["retry-after"]) == ("4", "2")


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        ({**MESSAGE, "model": "nope"}, 400, "invalid_request_error"),
        (
            {**MESSAGE, "max_tokens": "many", "model": "gemini-2-5-flash"},
            400,
            "invalid_request_error",
        ),
    ],
)
async def test_messages_errors_have_anthropic_shape(
    gw: Live, tenant: Tenant, body: dict[str, Any], status: int, kind: str
) -> None:
    got, _, raw = await _post(gw, "/v1/messages", body, {"x-api-key": tenant.key})
    err = orjson.loads(raw)
    assert got == status and err["type"] == "error" and err["error"]["type"] == kind
    got, _, raw = await _post(gw, "/v1/messages", body, {"x-api-key": "wrong"})
    assert got == 401 and orjson.loads(raw)["error"]["type"] == "authentication_error"


async def test_unsupported_features_are_400s_that_say_so(gw: Live, tenant: Tenant) -> None:
    server_tool = {
        **MESSAGE,
        "model": "gemini-2-5-flash",
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    status, _, raw = await _post(gw, "/v1/messages", server_tool, {"x-api-key": tenant.key})
    assert status == 400 and "web_search_20250305" in orjson.loads(raw)["error"]["message"]
    images = {
        "contents": [{"role": "user", "parts": [{"text": "draw"}]}],
        "generationConfig": {"responseModalities": ["IMAGE"]},
    }
    status, _, raw = await _post(
        gw, f"/v1beta/models/claude-sonnet-4-6:generateContent?key={tenant.key}", images
    )
    err = orjson.loads(raw)["error"]
    assert status == 400 and err["status"] == "INVALID_ARGUMENT"
    assert "modalities" in err["message"]


async def test_gemini_routes_keys_and_methods(gw: Live, fake: FakeUpstream, tenant: Tenant) -> None:
    fake.push(Scenario(recording=GEMINI["google-text.json"]))
    status, _, raw = await _post(
        gw,
        "/ai-gateway/gemini/v1beta/models/google/gemini-2.5-flash:generateContent",
        CONTENTS,
        {"x-goog-api-key": tenant.key},
    )
    assert status == 200 and raw == GEMINI["google-text.json"].wire()
    assert fake.requests[-1].path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert fake.requests[-1].headers["x-goog-api-key"] == UPSTREAM_SECRET
    status, _, raw = await _post(
        gw, f"/v1beta/models/gemini-2-5-flash:predict?key={tenant.key}", CONTENTS
    )
    assert status == 404 and orjson.loads(raw)["error"]["status"] == "NOT_FOUND"
    status, _, raw = await _post(
        gw, "/v1beta/models/nope:generateContent", CONTENTS, {"x-goog-api-key": tenant.key}
    )
    assert status == 400 and orjson.loads(raw)["error"]["status"] == "INVALID_ARGUMENT"


async def test_gemini_stream_without_sse_is_a_json_array(
    gw: Live, fake: FakeUpstream, tenant: Tenant
) -> None:
    fake.push(Scenario(recording=ANTHROPIC["anthropic-text.chunks.txt"]))
    status, headers, raw = await _post(
        gw,
        "/v1beta/models/claude-sonnet-4-6:streamGenerateContent",
        CONTENTS,
        {"x-goog-api-key": tenant.key},
    )
    assert status == 200 and headers["content-type"].startswith("application/json")
    answer = read_gemini_array(raw)
    assert answer.text.startswith("Hello! I'm doing well") and answer.finish == "STOP"
    assert fake.requests[-1].body["stream"] is True


async def test_gemini_malformed_upstream_stream_ends_in_error(
    gw: Live, fake: FakeUpstream, tenant: Tenant
) -> None:
    fake.push(Scenario(recording=ANTHROPIC["spliced-message-start.chunks.txt"]))
    status, _, raw = await _post(
        gw,
        "/v1beta/models/claude-sonnet-4-6:streamGenerateContent?alt=sse",
        CONTENTS,
        {"x-goog-api-key": tenant.key},
    )
    last = raw.strip().split(b"\r\n\r\n")[-1]
    assert status == 200 and orjson.loads(last.removeprefix(b"data: "))["error"]["code"] == 502


GEMINI_CHUNK = (
    b'data: {"candidates":[{"content":{"role":"model","parts":[{"text":"x"}]}}],'
    b'"modelVersion":"gemini-2.5-flash","responseId":"r"}\r\n\r\n'
)


async def test_client_disconnect_closes_a_translated_upstream(
    gw: Live, fake: FakeUpstream, tenant: Tenant
) -> None:
    """A Messages client reading a Gemini stream leaves: the Gemini call, which would never end
    by itself, is closed (how soon: a printed figure)."""
    fake.push(Scenario(endless=True, endless_frame=GEMINI_CHUNK, delay_chunks=0.02))
    assert gw.http is not None
    async with gw.http.post(
        f"{gw.url}/v1/messages",
        json={**MESSAGE, "model": "gemini-2-5-flash", "stream": True},
        headers={"x-api-key": tenant.key},
    ) as resp:
        assert resp.status == 200
        await resp.content.readline()
        await resp.content.readline()
        assert resp.connection is not None and resp.connection.transport is not None
        resp.connection.transport.abort()
        closed_at = stamp()
    await wait_until(lambda: bool(fake.disconnects), "upstream connection still open", poll=0.01)
    print(f"Gemini call closed {(fake.disconnects[0] - closed_at) * 1000:.0f} ms after")


async def test_gemini_passthrough_without_sse_relays_the_array(
    gw: Live, fake: FakeUpstream, tenant: Tenant
) -> None:
    chunks = GEMINI["google-text.chunks.txt"].events()
    fake.push(Scenario(body=orjson.dumps(chunks)))
    status, _, raw = await _post(
        gw,
        "/v1beta/models/gemini-2-5-flash:streamGenerateContent",
        CONTENTS,
        {"x-goog-api-key": tenant.key},
    )
    assert status == 200 and orjson.loads(raw) == chunks
    assert fake.requests[-1].path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"

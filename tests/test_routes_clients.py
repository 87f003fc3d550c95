"""Paths real clients send: Gemini calls with a slashed id and no `models/` (the AI SDK's Google
provider), and an unknown route answered in its API's shape, naming what is served there."""

from __future__ import annotations

import json

from tests.support.gateway import Live


async def _post(live: Live, path: str, body: dict, key: str) -> tuple[int, dict | list, str]:
    assert live.http is not None
    async with live.http.post(
        f"{live.url}{path}",
        json=body,
        headers={"x-goog-api-key": key, "Authorization": f"Bearer {key}"},
    ) as resp:
        text = await resp.text()
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = {}
        return resp.status, parsed, text


async def test_a_slashed_id_without_models_is_served_and_metered(gateway: Live) -> None:
    tenant = await gateway.tenant(quota={"requests_per_minute": 2})
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    status, answer, _ = await _post(gateway, "/v1beta/local/echo:generateContent", body, tenant.key)
    assert status == 200, answer
    assert answer["candidates"][0]["content"]["parts"][0]["text"] == "Echo: hi"  # type: ignore[index]
    status, _, text = await _post(
        gateway, "/v1beta/local/echo:streamGenerateContent?alt=sse", body, tenant.key
    )
    assert status == 200 and "Echo" in text
    status, answer, _ = await _post(gateway, "/v1beta/local/echo:generateContent", body, tenant.key)
    assert status == 429, answer


async def test_an_unknown_route_answers_in_its_apis_shape_naming_the_routes(gateway: Live) -> None:
    tenant = await gateway.tenant()
    status, answer, _ = await _post(gateway, "/v1beta/tunedModels/x:predict", {}, tenant.key)
    assert status == 404
    error = answer["error"]  # type: ignore[index]
    assert error["status"] == "NOT_FOUND" and "generateContent" in error["message"]
    status, answer, _ = await _post(gateway, "/ai-gateway/anthropic/v1/complete", {}, tenant.key)
    assert status == 404 and answer["type"] == "error"  # type: ignore[index]
    assert "/ai-gateway/anthropic/v1/messages" in answer["error"]["message"]  # type: ignore[index]
    status, answer, _ = await _post(gateway, "/v1/completions", {}, tenant.key)
    assert status == 404 and "/v1/chat/completions" in answer["error"]["message"]  # type: ignore[index]

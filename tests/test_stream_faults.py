"""A fault of the gateway's own in the middle of a translated stream ends it with the API's
terminal error event: never a 500 written into a stream that has begun, never a clean end."""

from __future__ import annotations

from typing import Any

import pytest

from edge.translate import chat_render
from tests.support.gateway import Live


async def test_a_fault_mid_stream_ends_with_the_terminal_error(
    gateway: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await gateway.tenant()
    real = chat_render.ChatStreamRenderer.feed
    calls = {"n": 0}

    def failing(self: Any, event: Any) -> bytes:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("a bug of ours")
        return real(self, event)

    monkeypatch.setattr(chat_render.ChatStreamRenderer, "feed", failing)
    assert gateway.http is not None
    async with gateway.http.post(
        f"{gateway.url}/v1/chat/completions",
        json={
            "model": "local/echo",
            "stream": True,
            "messages": [{"role": "user", "content": "one two three four five"}],
        },
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as resp:
        assert resp.status == 200
        text = await resp.text()
    assert "HTTP/1.1 500" not in text
    last = [line for line in text.splitlines() if line.startswith("data:")][-1]
    assert '"error"' in last and "internal_error" in last

"""Helpers shared by the quota tests: calls to local/echo and admin shortcuts."""

from __future__ import annotations

from typing import Any

import aiohttp

ECHO = "local/echo"


def chat_body(text: str = "hello", max_tokens: int | None = 16, **extra: Any) -> dict[str, Any]:
    """A Chat Completions body for the in-process echo model."""
    body: dict[str, Any] = {"model": ECHO, "messages": [{"role": "user", "content": text}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    body.update(extra)
    return body


async def chat(
    http: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, str], Any]:
    """POST /v1/chat/completions; returns (status, headers, JSON body)."""
    async with http.post(
        f"{url}/v1/chat/completions",
        json=body or chat_body(),
        headers={"Authorization": f"Bearer {key}"},
    ) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


async def open_stream(http: aiohttp.ClientSession, url: str, key: str) -> aiohttp.ClientResponse:
    """Start a streamed Chat call to the fake upstream's model and wait for its first bytes."""
    resp = await http.post(
        f"{url}/v1/chat/completions",
        json=chat_body(stream=True, model="gpt-5-4-nano"),
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status == 200, await resp.text()
    await resp.content.readany()  # the stream is flowing
    return resp

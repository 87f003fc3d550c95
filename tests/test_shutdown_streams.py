"""At the shutdown deadline every open stream ends with its client API's own terminal error
event, code `server_shutdown`: relayed and translated streams alike."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from edge.appkeys import LIFECYCLE
from edge.settings import Shutdown
from edge.shutdown import drain
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import gateway_env, settings_for, start_live, stop_live


def last_event(raw: bytes) -> bytes:
    """The last SSE event (Gemini separates events with CRLF pairs)."""
    events = [e for e in re.split(rb"\r?\n\r?\n", raw) if e.strip()]
    return events[-1].replace(b"\r\n", b"\n")


def chat_error(raw: bytes) -> Any:
    last = last_event(raw)
    return orjson.loads(last.removeprefix(b"data: "))["error"]["code"]


def anthropic_error(raw: bytes) -> Any:
    last = last_event(raw)
    name, data = last.split(b"\n", 1)
    assert name == b"event: error"
    body = orjson.loads(data.removeprefix(b"data: "))
    return "server_shutdown" if "shut down" in body["error"]["message"] else body


def gemini_error(raw: bytes) -> Any:
    last = last_event(raw)
    body = orjson.loads(last.removeprefix(b"data: "))
    return "server_shutdown" if "shut down" in body["error"]["message"] else body


MESSAGES = [{"role": "user", "content": "hi"}]
# An OpenAI-compatible model: its upstream speaks Chat Completions whatever the client API.
COMPAT = "databricks-qwen35-122b-a10b"
CHUNK = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"x"}}]}\n\n'
)
CASES: list[tuple[str, dict[str, Any], Callable[[str], dict[str, str]], Callable[[bytes], Any]]] = [
    (
        "/v1/chat/completions",  # same API both sides: relayed
        {"model": "gpt-5-4", "stream": True, "messages": MESSAGES},
        lambda key: {"Authorization": f"Bearer {key}"},
        chat_error,
    ),
    (
        "/v1/messages",  # Anthropic client, Chat Completions upstream: translated
        {"model": COMPAT, "stream": True, "max_tokens": 50, "messages": MESSAGES},
        lambda key: {"x-api-key": key},
        anthropic_error,
    ),
    (
        f"/v1beta/models/{COMPAT}:streamGenerateContent?alt=sse",  # Gemini client: translated
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        lambda key: {"x-goog-api-key": key},
        gemini_error,
    ),
]


@pytest.mark.parametrize(("path", "body", "headers", "code_of"), CASES, ids=lambda c: str(c)[:24])
async def test_open_stream_at_the_deadline_gets_its_apis_terminal_event(
    fake: FakeUpstream,
    path: str,
    body: dict[str, Any],
    headers: Callable[[str], dict[str, str]],
    code_of: Callable[[bytes], Any],
) -> None:
    settings = settings_for(gateway_env("memory://", fake.url))
    live = await start_live(settings.with_overrides(shutdown=Shutdown(grace=0.0, timeout=0.3)))
    try:
        assert live.http is not None and live.app is not None
        tenant = await live.tenant()
        fake.push(Scenario(frames=[CHUNK], endless=True, endless_frame=CHUNK, delay_chunks=0.02))
        async with (
            asyncio.timeout(10),
            live.http.post(f"{live.url}{path}", json=body, headers=headers(tenant.key)) as resp,
        ):
            assert resp.status == 200, await resp.text()
            first = await resp.content.readany()
            assert live.app[LIFECYCLE].inflight.streams()
            drained = asyncio.ensure_future(drain(live.app, asyncio.Event()))
            raw = first + await asyncio.wait_for(resp.read(), 5)  # a clean end of body
        await asyncio.wait_for(drained, 5)
        assert code_of(raw) == "server_shutdown"
        for _ in range(100):  # the cancelled handler unwinds within a few loop turns
            if not live.app[LIFECYCLE].inflight.streams():
                break
            await asyncio.sleep(0.01)
        assert not live.app[LIFECYCLE].inflight.streams()
        assert fake.disconnects, "the upstream call was closed too"
    finally:
        await stop_live(live)

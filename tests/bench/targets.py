"""What the bench sends: the same small request, direct to the fake upstream or via the gateway."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from tests.bench.scenarios import Target
from tests.bench.stack import BRANCH, FakeUpstreamProcess, Gateway, Service
from tests.support.gateway import UPSTREAM_SECRET

OPENAI_MODEL, OPENAI_UPSTREAM = "gpt-5-4", "gpt-5.4"
ANTHROPIC_MODEL = "claude-sonnet-4-6"
PROMPT = "Say hello in one short sentence."


def chat_body(model: str, stream: bool, usage: bool = False) -> bytes:
    """A small Chat Completions request (`usage`: ask for the usage chunk of a stream)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": PROMPT},
        ],
        "max_tokens": 64,
    }
    if stream:
        body["stream"] = True
        if usage:
            body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


def messages_body(stream: bool) -> bytes:
    """The same request in Anthropic Messages."""
    body: dict[str, Any] = {
        "model": ANTHROPIC_MODEL,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 64,
    }
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def direct_target(upstream: FakeUpstreamProcess) -> Target:
    """Chat Completions straight to the fake upstream."""
    return Target(
        "direct",
        upstream.port,
        "/v1/chat/completions",
        {"Authorization": f"Bearer {UPSTREAM_SECRET}"},
        chat_body(OPENAI_UPSTREAM, False),
        # What the gateway sends upstream: it asks for the usage chunk that quotas need.
        chat_body(OPENAI_UPSTREAM, True, usage=True),
        pids=upstream.pids,
    )


def gateway_target(gw: Gateway, label: str, model: str = OPENAI_MODEL) -> Target:
    """Chat Completions through the gateway, with an API key and a branch."""
    return Target(
        label,
        gw.process.port,
        "/v1/chat/completions",
        {"Authorization": f"Bearer {gw.key}", "X-Branch-Id": BRANCH},
        chat_body(model, False),
        chat_body(model, True),
        pids=gw.pids,
        store=True,
    )


def service_target(
    service: Service, headers: dict[str, str], model: str, path: str = "/v1/chat/completions"
) -> Target:
    """Chat Completions through another server (a peer gateway), as its clients call it."""
    return Target(
        service.name,
        service.port,
        path,
        headers,
        chat_body(model, False),
        chat_body(model, True),
        pids=service.pids,
    )


def relay_target(relay: Service) -> Target:
    """Chat Completions through the bare aiohttp relay, passed on as is: what the gateway sends
    upstream (its streams ask for the usage chunk, one event more), so that a stream's length
    is the same as direct's and the gateway's."""
    target = service_target(relay, {"Authorization": "Bearer x"}, OPENAI_UPSTREAM)
    return replace(target, stream_body=chat_body(OPENAI_UPSTREAM, True, usage=True))


def anthropic_direct(upstream: FakeUpstreamProcess) -> Target:
    """Anthropic Messages straight to the fake upstream."""
    return Target(
        "direct",
        upstream.port,
        "/v1/messages",
        {"x-api-key": UPSTREAM_SECRET, "anthropic-version": "2023-06-01"},
        messages_body(False),
        messages_body(True),
        pids=upstream.pids,
    )

"""Every recording, replayed by the fake provider, through every client API.

Each pair must come out as a valid answer of the client's API whose text, tool calls (names
and argument JSON), reasoning text and usage equal the recording's; an error recording must
become the client API's error with the provider's status; a malformed stream must end with the
client API's terminal error event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.expected import expected
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.matrix import (
    CLIENT_APIS,
    PROVIDER_MODELS,
    RESPONSES_ONLY,
    call,
    request_for,
    responses_available,
    responses_only_config,
)
from tests.support.recordings import Recording, recordings

PROVIDERS = ("anthropic", "gemini", "openai-chat", "openai-responses")
# Known gateway bugs, each a pair that must start passing once fixed.
KNOWN: dict[tuple[str, str], str] = {}
CASES = [
    pytest.param(
        rec,
        api,
        id=f"{rec.api}/{rec.name}->{api}",
        marks=[pytest.mark.xfail(strict=True, reason=KNOWN[rec.name, api])]
        if (rec.name, api) in KNOWN
        else [],
    )
    for provider in PROVIDERS
    for rec in recordings(provider)  # type: ignore[arg-type]
    for api in CLIENT_APIS
]
PASSTHROUGH = {
    ("chat", "openai-chat"),
    ("responses", "openai-responses"),
    ("messages", "anthropic"),
    ("gemini", "gemini"),
}
ERROR_SHAPES = {
    "chat": lambda b: b["error"]["message"],
    "responses": lambda b: b["error"]["message"],
    "messages": lambda b: b["type"] == "error" and b["error"]["message"],
    "gemini": lambda b: b["error"]["status"] and b["error"]["message"],
}


MODELS = {**PROVIDER_MODELS, "openai-responses": RESPONSES_ONLY}


@pytest.fixture
async def gw(fake: FakeUpstream, tmp_path: Path) -> AsyncIterator[Live]:
    """A gateway on the embedded store (translation does not depend on it), with a provider
    that speaks only Responses so that every client API crosses that wire too."""
    config = tmp_path / "edge.toml"
    config.write_text(responses_only_config(fake.url))
    env = gateway_env("memory://", fake.url, EDGE_CONFIG=str(config))
    live = await start_live(settings_for(env))
    yield live
    await stop_live(live)


@pytest.mark.parametrize(("rec", "api"), CASES)
async def test_recording_through_client_api(
    gw: Live, fake: FakeUpstream, rec: Recording, api: str
) -> None:
    if "responses" in (api, rec.api.removeprefix("openai-")) and not responses_available(gw):
        pytest.skip("the Responses API is not in this build")
    exp = expected(rec)
    tenant = await gw.tenant()
    fake.push(Scenario(recording=rec, status=exp.status))
    model = MODELS[rec.api]
    path, body = request_for(api, model, "hello", stream=rec.streamed)
    out = await call(gw, tenant.key, api, path, body)

    assert out.headers.get("x-edge-model") == model
    if exp.kind == "error":
        assert out.status == exp.client_status, out.error
        assert ERROR_SHAPES[api](out.error)
        if exp.retry_after is not None:
            assert out.headers.get("retry-after") == exp.retry_after
        return
    assert out.status == 200, out.error
    assert out.answer is not None
    if exp.kind == "terminal":
        assert out.answer.error is not None, "a malformed stream must end in an error event"
        return
    assert out.answer.error is None, out.answer.error
    if (api, rec.api) not in PASSTHROUGH:  # a translated stream is clean to its end
        assert (out.answer.trailing, out.answer.unreadable) == (0, 0)
    assert out.answer.text == exp.text
    assert out.answer.calls == exp.calls
    assert out.answer.reasoning == exp.reasoning
    assert out.answer.usage == exp.usage

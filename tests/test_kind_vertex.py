"""Google Vertex AI as a provider kind: Gemini (generateContent / streamGenerateContent) and
Claude (rawPredict / streamRawPredict with `anthropic_version: vertex-2023-10-16`) under the
project and location path, with OAuth tokens that google-auth gets from a service account at
a local token endpoint, which the fake upstream requires; every client API through its
official SDK, against recorded Gemini and Claude traffic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.expected import expected
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.google_tokens import TokenServer
from tests.support.recordings import Recording, recordings_dir
from tests.support.sdk_calls import CLIENT_APIS, ask

PROJECT, LOCATION = "edge-test-project", "us-east5"
ROOT = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers"
MODELS = {
    "gemini": ("vertex-gemini-flash", "gemini", "google-text", "gemini-2.5-flash"),
    "claude": ("vertex-claude-sonnet", "anthropic", "anthropic-text", "claude-sonnet-4-5@20250929"),
}
CONFIG = """
[[catalog.models]]
id = "vertex-gemini-flash"
provider = "vertex"
upstream = "gemini-2.5-flash"

[[catalog.models]]
id = "vertex-claude-sonnet"
provider = "vertex-anthropic"
upstream = "claude-sonnet-4-5@20250929"
"""


async def _gateway(fake: FakeUpstream, tokens: TokenServer, folder: Path) -> Live:
    config = folder / "edge.toml"
    config.write_text(CONFIG)
    env = {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "GOOGLE_CLOUD_LOCATION": LOCATION,
        "VERTEX_BASE_URL": fake.url,
        "GOOGLE_APPLICATION_CREDENTIALS": str(tokens.service_account_file(folder)),
        "EDGE_CONFIG": str(config),
    }
    fake.authorize = tokens.check_bearer
    return await start_live(settings_for(gateway_env("memory://", fake.url, **env)))


@pytest.fixture
async def tokens() -> AsyncIterator[TokenServer]:
    """The token endpoint, issuing hour-long tokens."""
    server = await TokenServer().start()
    yield server
    await server.stop()


@pytest.fixture
async def gw(fake: FakeUpstream, tokens: TokenServer, tmp_path: Path) -> AsyncIterator[Live]:
    """A gateway whose Vertex endpoint is the fake."""
    live = await _gateway(fake, tokens, tmp_path)
    yield live
    await stop_live(live)


def _recording(folder: str, stem: str, stream: bool) -> Recording:
    name = f"{stem}.chunks.txt" if stream else f"{stem}.json"
    return Recording(folder, recordings_dir() / folder / name)  # type: ignore[arg-type]


@pytest.mark.parametrize("family", list(MODELS))
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("api", CLIENT_APIS)
async def test_every_client_api_reads_vertex(
    gw: Live, fake: FakeUpstream, tokens: TokenServer, api: str, stream: bool, family: str
) -> None:
    model, folder, stem, upstream = MODELS[family]
    rec = _recording(folder, stem, stream)
    exp = expected(rec)
    assert exp.text
    key = (await gw.tenant()).key
    fake.push(Scenario(recording=rec), Scenario(recording=rec))
    for _ in range(2):
        got = await ask(api, gw.url, key, model, stream)
        assert (got.text, got.calls) == (exp.text, exp.calls)
        assert (got.input_tokens, got.output_tokens) == (exp.usage.input, exp.usage.output)
    seen = fake.requests[-1]
    if family == "gemini":
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        assert seen.path == f"{ROOT}/google/models/{upstream}:{method}"
    else:
        method = "streamRawPredict" if stream else "rawPredict"
        assert seen.path == f"{ROOT}/anthropic/models/{upstream}:{method}"
        assert seen.body["anthropic_version"] == "vertex-2023-10-16"
        assert "model" not in seen.body
    assert seen.headers["Authorization"] == f"Bearer {tokens.issued[0]}"
    assert "x-goog-api-key" not in seen.headers
    assert len(tokens.issued) == 1  # one token for every call while it is valid


async def test_a_token_about_to_expire_is_refreshed_before_it_does(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    """A token with less left than google-auth's refresh margin (a few minutes) is replaced
    on the next call, while it is still valid: calls never carry an expired token."""
    tokens = await TokenServer(expires_in=200).start()
    live = await _gateway(fake, tokens, tmp_path)
    try:
        key = (await live.tenant()).key
        rec = _recording("gemini", "google-text", False)
        fake.push(Scenario(recording=rec), Scenario(recording=rec))
        await ask("chat", live.url, key, "vertex-gemini-flash", stream=False)
        await ask("chat", live.url, key, "vertex-gemini-flash", stream=False)
        assert len(tokens.issued) == 2
        assert [r.headers["Authorization"] for r in fake.requests] == [
            f"Bearer {tokens.issued[0]}",
            f"Bearer {tokens.issued[1]}",
        ]
    finally:
        await stop_live(live)
        await tokens.stop()


async def test_a_token_the_endpoint_did_not_issue_is_refused(
    gw: Live, fake: FakeUpstream, tokens: TokenServer
) -> None:
    """The fake checks the bearer: the same call with the issued list emptied is refused."""
    key = (await gw.tenant()).key
    rec = _recording("gemini", "google-text", False)
    fake.push(Scenario(recording=rec))
    await ask("gemini", gw.url, key, "vertex-gemini-flash", stream=False)
    tokens.issued[0] = "revoked"
    fake.push(Scenario(recording=rec))
    assert gw.http is not None
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    url = f"{gw.url}/v1beta/models/vertex-gemini-flash:generateContent"
    async with gw.http.post(url, json=body, headers={"x-goog-api-key": key}) as resp:
        assert resp.status == 502
    assert len(fake.queue) == 1  # refused before the scenario answered

"""Amazon Bedrock as a provider kind: Converse and ConverseStream, SigV4 signatures the fake
verifies with botocore, event-stream framing with real checksums; every client API through
its official SDK, against recorded Bedrock traffic."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from tests.support import bedrock_wire as wire
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.sdk_calls import CLIENT_APIS, ask

MODEL = "bedrock-claude-sonnet-4-5"
PROFILE = "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0"
STREAM = "application/vnd.amazon.eventstream"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials from the AWS chain's first link, the environment; nothing else is read."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", wire.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wire.SECRET_KEY)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/edge-test-aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/edge-test-aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
async def gw(fake: FakeUpstream, aws_env: None) -> AsyncIterator[Live]:
    """A gateway whose Bedrock endpoint is the fake, which checks every signature."""
    fake.authorize = wire.sigv4_check
    env = {"AWS_REGION": wire.REGION, "BEDROCK_BASE_URL": fake.url}
    live = await start_live(settings_for(gateway_env("memory://", fake.url, **env)))
    yield live
    await stop_live(live)


@pytest.fixture
async def key(gw: Live) -> str:
    """An invoke key."""
    return (await gw.tenant()).key


def _scenario(stem: str, stream: bool) -> Scenario:
    if stream:
        path = wire.recording(f"{stem}.chunks.txt")
        return Scenario(frames=wire.frames(path), content_type=STREAM)
    return Scenario(body=wire.recording(f"{stem}.json").read_bytes())


CASES = {
    "text": "amazon-bedrock-text",
    "tools": "amazon-bedrock-tool-call.1",
    "reasoning": "amazon-bedrock-reasoning",
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("api", CLIENT_APIS)
async def test_every_client_api_reads_bedrock(
    gw: Live, fake: FakeUpstream, key: str, api: str, stream: bool, case: str
) -> None:
    stem = CASES[case]
    suffix = ".chunks.txt" if stream else ".json"
    exp = wire.expected(wire.recording(stem + suffix))
    assert exp.text or exp.calls
    fake.push(_scenario(stem, stream))
    got = await ask(api, gw.url, key, MODEL, stream, tools=case == "tools")
    assert got.text == exp.text
    assert got.calls == exp.calls
    if api != "chat" or not stream:  # a Chat stream's reasoning is its own chunks' field
        assert got.reasoning == exp.reasoning
    assert (got.input_tokens, got.output_tokens) == (exp.usage.input, exp.usage.output)
    seen = fake.requests[-1]
    method = "converse-stream" if stream else "converse"
    assert seen.path == f"/model/{PROFILE}/{method}"
    assert seen.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    assert seen.body["messages"][0]["content"] == [
        {"text": "What is the weather in San Francisco?"}
    ]
    if case == "tools":
        spec = seen.body["toolConfig"]["tools"][0]["toolSpec"]
        assert spec["name"] == "weather" and spec["inputSchema"]["json"]["required"] == ["location"]
        assert got.stop == {"chat": "tool_calls", "messages": "tool_use"}.get(api, got.stop)


async def test_reasoning_is_asked_as_claude_thinking_and_replayed_signed(
    gw: Live, fake: FakeUpstream, key: str
) -> None:
    """Messages' `thinking` becomes Converse's model field; the signed reasoning block of the
    answer goes back, signature and all, on the next turn."""
    body = wire.recording("amazon-bedrock-reasoning.json").read_bytes()
    fake.push(Scenario(body=body), Scenario(body=body))
    assert gw.http is not None
    request = {
        "model": MODEL,
        "max_tokens": 4000,
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "messages": [{"role": "user", "content": "How many r in strawberry?"}],
    }
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    async with gw.http.post(f"{gw.url}/v1/messages", json=request, headers=headers) as resp:
        assert resp.status == 200
        answer = await resp.json()
    sent = fake.requests[-1].body
    assert sent["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 2000}
    }
    assert sent["inferenceConfig"] == {"maxTokens": 4000}
    thinking = answer["content"][0]
    assert thinking["type"] == "thinking" and thinking["signature"].startswith("EvYB")
    request["messages"] += [
        {"role": "assistant", "content": answer["content"]},
        {"role": "user", "content": "And in raspberry?"},
    ]
    async with gw.http.post(f"{gw.url}/v1/messages", json=request, headers=headers) as resp:
        assert resp.status == 200
    replayed = fake.requests[-1].body["messages"][1]["content"][0]
    assert replayed["reasoningContent"]["reasoningText"]["signature"] == thinking["signature"]


async def test_cache_reads_and_writes_are_counted_as_input(
    gw: Live, fake: FakeUpstream, key: str
) -> None:
    body = orjson.loads(wire.recording("amazon-bedrock-text.json").read_bytes())
    body["usage"] |= {"inputTokens": 5, "cacheReadInputTokens": 100, "cacheWriteInputTokens": 20}
    fake.push(Scenario(body=orjson.dumps(body)))
    got = await ask("messages", gw.url, key, MODEL, stream=False)
    assert got.input_tokens == 125  # the SDK's input plus its cache reads and writes
    fake.push(Scenario(body=orjson.dumps(body)))
    got = await ask("responses", gw.url, key, MODEL, stream=False)
    assert got.input_tokens == 125


async def test_an_exception_mid_stream_ends_with_the_apis_error_event(
    gw: Live, fake: FakeUpstream, key: str
) -> None:
    head = wire.frames(wire.recording("amazon-bedrock-text.chunks.txt"))[:3]
    cut = [*head, wire.exception("throttlingException", "Too many tokens, please wait.")]
    fake.push(Scenario(frames=cut, content_type=STREAM))
    assert gw.http is not None
    request = {
        "model": MODEL,
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    async with gw.http.post(f"{gw.url}/v1/messages", json=request, headers=headers) as resp:
        text = await resp.text()
    assert "event: content_block_delta" in text
    assert text.rstrip().endswith("}") and "event: error" in text
    assert "Too many tokens" in text and "message_stop" not in text


async def test_a_corrupt_frame_is_a_terminal_error_not_a_clean_end(
    gw: Live, fake: FakeUpstream, key: str
) -> None:
    frames = wire.frames(wire.recording("amazon-bedrock-text.chunks.txt"))
    broken = frames[2][:-1] + bytes([frames[2][-1] ^ 0xFF])  # its message CRC no longer holds
    fake.push(Scenario(frames=[*frames[:2], broken, *frames[3:]], content_type=STREAM))
    assert gw.http is not None
    body = {"model": MODEL, "input": "hi", "stream": True}
    headers = {"Authorization": f"Bearer {key}"}
    async with gw.http.post(f"{gw.url}/v1/responses", json=body, headers=headers) as resp:
        text = await resp.text()
    assert "response.failed" in text and "response.completed" not in text


async def test_a_wrong_secret_is_refused_by_the_signature_check(
    gw: Live, fake: FakeUpstream, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake really verifies: a signature made with another secret is refused (the gateway
    read its credentials once, so a second gateway is started with the wrong ones)."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-the-fake-knows-0123456789")
    env = {"AWS_REGION": wire.REGION, "BEDROCK_BASE_URL": fake.url}
    other = await start_live(settings_for(gateway_env("memory://", fake.url, **env)))
    try:
        other_key = (await other.tenant()).key
        fake.push(_scenario("amazon-bedrock-text", False))
        assert other.http is not None
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        headers = {"Authorization": f"Bearer {other_key}"}
        url = f"{other.url}/v1/chat/completions"
        async with other.http.post(url, json=body, headers=headers) as resp:
            # The provider's 403 is the gateway's own credentials failing: a 502 for the caller.
            assert resp.status == 502
            assert "credentials" in (await resp.json())["error"]["message"]
        assert len(fake.queue) == 1  # refused by the signature check: the scenario is unused
    finally:
        await stop_live(other)

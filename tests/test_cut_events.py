"""A provider event cut short is an error, never a shorter answer: a Responses text delta cut
inside its string ends a Messages or Gemini client's stream with that API's terminal error."""

from __future__ import annotations

import anthropic
import pytest

from tests.support.fake_upstream import Scenario
from tests.support.gateway import Live
from tests.test_responses_passthrough import BY_NAME, frames_of


def _cut_frames() -> list[bytes]:
    frames = frames_of(BY_NAME["lmstudio-basic.1.chunks.txt"])
    deltas = [i for i, f in enumerate(frames) if b"response.output_text.delta" in f]
    cut = deltas[3]
    whole = frames[cut]
    at = whole.index(b'"delta":"') + len(b'"delta":"') + 1  # inside the delta's string
    frames[cut] = whole[:at] + b"\n\n"
    return frames


async def test_a_messages_client_gets_an_error_event_not_a_short_answer(
    gateway: Live, fake
) -> None:
    tenant = await gateway.tenant()
    fake.push(Scenario(frames=_cut_frames()))
    sdk = anthropic.AsyncAnthropic(api_key=tenant.key, base_url=gateway.url, max_retries=0)
    try:
        with pytest.raises(anthropic.APIError):
            async with sdk.messages.stream(
                model="gpt-5-4", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
            ) as stream:
                async for _ in stream:
                    pass
    finally:
        await sdk.close()


async def test_a_gemini_client_gets_an_error_chunk_not_stop(gateway: Live, fake) -> None:
    tenant = await gateway.tenant()
    fake.push(Scenario(frames=_cut_frames()))
    assert gateway.http is not None
    async with gateway.http.post(
        f"{gateway.url}/v1beta/models/gpt-5-4:streamGenerateContent?alt=sse",
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        headers={"x-goog-api-key": tenant.key},
    ) as resp:
        assert resp.status == 200
        text = await resp.text()
    assert '"error"' in text.rsplit("data:", 1)[-1]
    assert '"finishReason":"STOP"' not in text.replace(" ", "")

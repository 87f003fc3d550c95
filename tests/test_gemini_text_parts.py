"""A Gemini answer whose text comes in several parts is one assistant message, whole or
streamed: as one message per part, a Responses client reading the last message (the OpenAI
Agents SDK's final output) kept a fragment, and a structured answer cut in two parsed as
neither."""

from __future__ import annotations

import openai
import orjson

from edge.translate import neutral as n
from edge.translate.gemini_inbound import gemini_response
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live

SPLIT = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [{"text": '{"city": "Pa'}, {"text": 'ris", "days": 3}'}],
            },
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4},
}


def test_consecutive_text_parts_are_one_message() -> None:
    (message,) = gemini_response(SPLIT).items
    assert isinstance(message, n.Message)
    assert message.text == '{"city": "Paris", "days": 3}'


def test_text_around_a_call_stays_apart() -> None:
    body = orjson.loads(orjson.dumps(SPLIT))
    body["candidates"][0]["content"]["parts"].insert(1, {"functionCall": {"name": "f"}})
    kinds = [type(i).__name__ for i in gemini_response(body).items]
    assert kinds == ["Message", "ToolCall", "Message"]


async def test_a_responses_client_gets_one_message(gateway: Live, fake: FakeUpstream) -> None:
    tenant = await gateway.tenant()
    fake.push(Scenario(body=orjson.dumps(SPLIT)))
    async with openai.AsyncOpenAI(
        api_key=tenant.key, base_url=f"{gateway.url}/v1", max_retries=0
    ) as client:
        answer = await client.responses.create(model="gemini-2-5-flash", input="trip")
    messages = [item for item in answer.output if item.type == "message"]
    assert len(messages) == 1
    assert orjson.loads(answer.output_text) == {"city": "Paris", "days": 3}

"""The output cap the quota estimate reads is the one that goes upstream: from each API's own
field(s), the larger where an API has two, as leniently as a provider reads it; and a Gemini
body that sets one field under both of its names is refused, whichever route it takes."""

from __future__ import annotations

from typing import Any

import pytest

from edge.errors import GatewayError
from edge.translate.anthropic_request import parse_messages_request
from edge.translate.chat_request import parse_chat_request
from edge.translate.gemini_request import check_field_names, parse_gemini_request
from edge.translate.responses_request import parse_params
from policies.catalog import Endpoint
from policies.quota_estimate import requested_cap
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import Live
from tests.test_quota_support import chat, chat_body

USER = [{"role": "user", "content": "hi"}]
CONTENTS = [{"role": "user", "parts": [{"text": "hi"}]}]


@pytest.mark.parametrize(
    ("endpoint", "payload", "cap"),
    [
        ("chat", {"max_completion_tokens": 10, "max_tokens": 3000}, 3000),
        ("chat", {"max_tokens": 3000, "max_completion_tokens": 10}, 3000),
        ("chat", {"max_tokens": 5}, 5),
        ("chat", {"max_output_tokens": 7}, None),  # not a Chat field: it goes nowhere
        ("responses", {"max_output_tokens": 12}, 12),
        ("responses", {"max_tokens": 5, "max_output_tokens": 50}, 50),
        ("responses", {"max_tokens": 5}, None),
        ("messages", {"max_tokens": 9}, 9),
        ("messages", {"max_completion_tokens": 5}, None),
        ("gemini", {"generationConfig": {"maxOutputTokens": 13}}, 13),
        ("gemini", {"generation_config": {"max_output_tokens": 14}}, 14),
        ("gemini", {"generationConfig": {"max_output_tokens": 15}}, 15),
        ("gemini", {"max_tokens": 1}, None),
        ("gemini", {"generationConfig": {"maxOutput_tokens": 5}}, None),  # not Google's name
        ("gemini", {"generationConfig": {"maxOutputTokens": "60000"}}, 60000),  # proto JSON
        ("gemini", {"generationConfig": {"maxOutputTokens": 99.5}}, 100),
        ("chat", {"max_tokens": "1e3"}, 1000),
        ("chat", {"max_tokens": True}, None),
        ("chat", {"max_tokens": 0, "max_completion_tokens": -4}, None),
        ("chat", {"max_tokens": "many"}, None),
    ],
)
def test_cap_read_from_the_fields_that_go_upstream(
    endpoint: Endpoint, payload: dict[str, Any], cap: int | None
) -> None:
    assert requested_cap(payload, endpoint) == cap


def test_without_an_endpoint_the_largest_cap_of_any_api() -> None:
    payload = {"max_tokens": 5, "max_output_tokens": 70, "generationConfig": {"maxOutputTokens": 9}}
    assert requested_cap(payload) == 70
    assert requested_cap({"generationConfig": {"maxOutputTokens": 1, "max_output_tokens": 8}}) == 8


def _adapter_cap(endpoint: Endpoint, body: dict[str, Any]) -> int | None:
    if endpoint == "chat":
        return parse_chat_request({"messages": USER, **body}).max_output_tokens
    if endpoint == "messages":
        return parse_messages_request({"messages": USER, **body}).max_output_tokens
    if endpoint == "responses":
        return parse_params(body).max_output_tokens
    return parse_gemini_request({"contents": CONTENTS, **body}, "m", False).max_output_tokens


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("chat", {"max_completion_tokens": 10, "max_tokens": 3000}),
        ("chat", {"max_tokens": 3000, "max_completion_tokens": 10}),
        ("chat", {"max_tokens": 30}),
        ("chat", {"max_output_tokens": 30}),
        ("chat", {}),
        ("responses", {"max_output_tokens": 40, "max_tokens": 1}),
        ("responses", {}),
        ("messages", {"max_tokens": 20, "max_completion_tokens": 1}),
        ("gemini", {"generationConfig": {"maxOutputTokens": 50}}),
        ("gemini", {"generation_config": {"max_output_tokens": 60}}),
        ("gemini", {"generationConfig": {"maxOutput_tokens": 70}}),
        ("gemini", {"max_tokens": 1}),
    ],
)
def test_adapter_never_sends_more_than_the_estimate_reads(
    endpoint: Endpoint, body: dict[str, Any]
) -> None:
    sent = _adapter_cap(endpoint, body)
    read = requested_cap(body, endpoint)
    assert (sent is None) == (read is None)
    assert sent is None or read is None or sent <= read


@pytest.mark.parametrize(
    ("body", "named", "param"),
    [
        (
            {"generationConfig": {"maxOutputTokens": 1, "max_output_tokens": 60000}},
            ("maxOutputTokens", "max_output_tokens"),
            "generationConfig.maxOutputTokens",
        ),
        (
            {"generationConfig": {}, "generation_config": {"max_output_tokens": 60000}},
            ("generationConfig", "generation_config"),
            "generationConfig",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {}, "inline_data": {}}]}]},
            ("inlineData", "inline_data"),
            "contents[0].parts[0].inlineData",
        ),
        ({"a_b1": 1, "a_b_1": 2}, ("a_b1", "a_b_1"), "a_b1"),  # two proto names, one field
    ],
)
def test_two_spellings_of_one_field_are_named(
    body: dict[str, Any], named: tuple[str, str], param: str
) -> None:
    with pytest.raises(GatewayError) as info:
        check_field_names(body)
    assert info.value.status == 400 and info.value.code == "ambiguous_field"
    assert f"Both '{named[0]}' and '{named[1]}'" in info.value.message
    assert info.value.param == param


def test_the_callers_own_data_keeps_its_keys() -> None:
    call = {"functionCall": {"name": "f", "args": {"user_id": 1, "userId": 2}}}
    check_field_names({"contents": [{"role": "model", "parts": [call]}]})
    declaration = {"name": "f", "parameters": {"properties": {"a_b": {}, "aB": {}}}}
    check_field_names({"tools": [{"functionDeclarations": [declaration]}]})


# Through a live gateway.


def _gemini(model: str, prefix: str = "") -> str:
    return f"{prefix}/v1beta/models/{model}:generateContent"


CAP_TWICE = {"generationConfig": {"maxOutputTokens": 1, "max_output_tokens": 60000}}
CAP_NAMES = "Both 'maxOutputTokens' and 'max_output_tokens' are set in 'generationConfig'"
CONFIG_TWICE = {
    "generation_config": {"max_output_tokens": 1},
    "generationConfig": {"maxOutputTokens": 60000},
}
CONFIG_NAMES = "Both 'generationConfig' and 'generation_config' are set in the request body"


@pytest.mark.parametrize(
    ("path", "config", "named"),
    [
        (_gemini("gemini-2-5-flash"), CAP_TWICE, CAP_NAMES),
        (_gemini("gemini-2-5-flash"), CONFIG_TWICE, CONFIG_NAMES),
        (_gemini("gemini-2-5-flash", "/ai-gateway/gemini"), CAP_TWICE, CAP_NAMES),
        (_gemini("google/gemini-2.5-flash"), CAP_TWICE, CAP_NAMES),
        (_gemini("claude-sonnet-4-6"), CAP_TWICE, CAP_NAMES),  # translated, not passed through
        (_gemini("local-echo"), CONFIG_TWICE, CONFIG_NAMES),
    ],
)
async def test_gemini_two_spellings_refused_on_every_route(
    gateway: Live, fake: FakeUpstream, path: str, config: dict[str, Any], named: str
) -> None:
    tenant = await gateway.tenant()
    assert gateway.http is not None
    body = {"contents": CONTENTS, **config}
    async with gateway.http.post(
        f"{gateway.url}{path}", json=body, headers={"x-goog-api-key": tenant.key}
    ) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"].startswith(named)
    assert error["details"][0]["reason"] == "ambiguous_field"
    assert fake.requests == []


async def test_gemini_callers_data_with_both_spellings_is_served(gateway: Live) -> None:
    tenant = await gateway.tenant()
    assert gateway.http is not None
    call = {"functionCall": {"name": "f", "args": {"user_id": 1, "userId": 2}}}
    answer = {"functionResponse": {"name": "f", "response": {"a_b": 1, "aB": 2}}}
    body = {
        "contents": [
            *CONTENTS,
            {"role": "model", "parts": [call]},
            {"role": "user", "parts": [answer]},
        ]
    }
    async with gateway.http.post(
        f"{gateway.url}{_gemini('local-echo')}", json=body, headers={"x-goog-api-key": tenant.key}
    ) as resp:
        assert resp.status == 200, await resp.text()


@pytest.mark.parametrize(
    "caps",
    [
        {"max_completion_tokens": 10, "max_tokens": 3000},
        {"max_tokens": 3000, "max_completion_tokens": 10},
    ],
)
async def test_chat_with_both_caps_is_estimated_at_the_larger(
    gateway: Live, caps: dict[str, int]
) -> None:
    tenant = await gateway.tenant(quota={"tokens_per_minute": 2000})
    assert gateway.http is not None
    status, _, body = await chat(
        gateway.http, gateway.url, tenant.key, {**chat_body(max_tokens=None), **caps}
    )
    assert status == 429, body
    assert "more than the limit of 2000 tokens per minute" in body["error"]["message"]
    status, _, body = await chat(gateway.http, gateway.url, tenant.key, chat_body(max_tokens=10))
    assert status == 200, body


async def test_gemini_cap_written_as_a_string_is_estimated_as_google_reads_it(
    gateway: Live, fake: FakeUpstream
) -> None:
    tenant = await gateway.tenant(quota={"tokens_per_minute": 10_000})
    assert gateway.http is not None
    body = {"contents": CONTENTS, "generationConfig": {"maxOutputTokens": "60000"}}
    async with gateway.http.post(
        f"{gateway.url}{_gemini('gemini-2-5-flash')}",
        json=body,
        headers={"x-goog-api-key": tenant.key},
    ) as resp:
        assert resp.status == 429
        error = (await resp.json())["error"]
    assert "more than the limit of 10000 tokens per minute" in error["message"]
    assert fake.requests == []

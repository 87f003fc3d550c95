"""Bad input, deliberately and at random, against a real `edge serve`: a corpus (wrong types in
every field of every client API and admin body, invalid JSON and UTF-8, deep nesting, bodies that
are not objects), the bodies fuzzing once answered 500 with (Gemini media parts, Anthropic tool
results, schemas the echo model reads, nesting past what orjson writes), and short seeded
`hypothesis` runs over every public route, the admin API and the translated-call corpus of
tests/support/fuzz_corpus.py. Zero 500s, zero crashes, every error a JSON body. The 10-minute
run is in tests/soak.

Also: another account's response id and an unknown one answer alike. Oversized bodies (413)
are in test_body_limit.py, malformed HTTP in test_reliability_server.py, JWT attacks in
test_jwt.py, foreign branches in test_auth.py; a wrong secret for a real key and an unknown key
doing the same work in test_auth.py (by instrumenting the calls), their timings in
tests/soak/test_durations_soak.py."""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.body import parse_body
from edge.errors import GatewayError
from edge.translate import neutral as n
from edge.translate.anthropic_outbound import messages_body
from edge.translate.anthropic_request import parse_messages_request
from edge.translate.chat_outbound import chat_body
from edge.translate.chat_request import parse_chat_request
from edge.translate.gemini_outbound import gemini_body
from edge.translate.gemini_request import parse_gemini_request
from edge.translate.responses_request import input_of, parse_params, to_neutral_request
from edge.translate.responses_upstream import request_body
from policies.quota import QUOTA_FIELDS
from tests.support.fuzz import (
    ADMIN_BODIES,
    EXTREME_NUMBERS,
    INFERENCE,
    Call,
    Target,
    admin_calls,
    corpus_calls,
    fuzz_tenants,
    inference_calls,
)
from tests.support.fuzz_corpus import API_BODIES, mutated
from tests.support.gateway import ADMIN_TOKEN, GatewayProcess, Live, gateway_env, settings_for

pytestmark = pytest.mark.timeout(180)
WRONG_TYPES: list[Any] = [None, True, 7, -1, 1.5, "s", "", [], [1], {}, {"a": 1}, 2**70]


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[Target, str, GatewayProcess]]:
    """A gateway process (no provider configured: only the in-process echo model answers) and
    an invoke key for it."""
    proc = GatewayProcess(gateway_env("memory://", None, EDGE_LOG_LEVEL="INFO")).start()
    target = Target("127.0.0.1", proc.port)
    key = fuzz_tenants(target)
    yield target, key, proc
    target.close()
    assert proc.proc is not None and proc.proc.poll() is None, "the gateway died"
    proc.stop()
    log = Path(proc.log).read_text()
    assert "unhandled error" not in log and "Traceback" not in log, log[-3000:]


def test_wrong_types_in_every_field(target: tuple[Target, str, GatewayProcess]) -> None:
    gateway, key, _ = target
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    sent = 0
    for path, valid in INFERENCE.values():
        for field in valid:
            for value in WRONG_TYPES:
                body = json.dumps({**valid, field: value}).encode()
                gateway.check(Call("POST", path, body, headers))
                sent += 1
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    new_key = orjson.dumps({"account": "acct_fuzz", "branch": "br-fuzz"})
    status, raw, _ = gateway.send(Call("POST", "/admin/v1/keys", new_key, admin))
    assert status == 201, raw
    key_id = orjson.loads(raw)["id"]
    for route, valid in ADMIN_BODIES.items():
        method, path = route.split(" ", 1)
        path = path.format(account="acct_fuzz", key_id=key_id, branch="br-fuzz")
        for field in valid or {"x": 1}:
            for value in WRONG_TYPES:
                body = json.dumps({**valid, field: value}).encode()
                gateway.check(Call(method, path, body, admin))
                sent += 1
    assert sent > 500
    print(f"{sent} calls, statuses {sorted(gateway.statuses.items())}")


def test_numeric_extremes_in_quota_fields(target: tuple[Target, str, GatewayProcess]) -> None:
    # Each quota field of a key and of its account set to a number at the edge of what a double
    # or a 64-bit integer holds (refused or kept), then a model call with that key.
    gateway, _, _ = target
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    body = orjson.dumps({"account": "acct_fuzz", "branch": "br-fuzz"})
    status, raw, _ = gateway.send(Call("POST", "/admin/v1/keys", body, admin))
    assert status == 201, raw
    created = orjson.loads(raw)
    invoke = {"Authorization": f"Bearer {created['key']}", "Content-Type": "application/json"}
    call = json.dumps({"model": "local/echo", "messages": [{"role": "user", "content": "hi"}]})
    for scope in (f"/admin/v1/keys/{created['id']}", "/admin/v1/accounts/acct_fuzz"):
        for field in QUOTA_FIELDS:
            for value in EXTREME_NUMBERS:
                quota = json.dumps({field: value}).encode()
                gateway.check(Call("PUT", f"{scope}/quota", quota, admin))
                gateway.check(Call("POST", "/v1/chat/completions", call.encode(), invoke))
                gateway.check(Call("DELETE", f"{scope}/quota", b"", admin))


def test_non_ascii_bytes_in_credential_headers(target: tuple[Target, str, GatewayProcess]) -> None:
    gateway, _, _ = target
    body = json.dumps({"model": "local/echo", "messages": [{"role": "user", "content": "hi"}]})
    for name in ("Authorization", "x-api-key", "x-goog-api-key", "X-Branch-Id", "x-request-id"):
        for value in ("Bearer \xe9", "\xe9\xff", "Bearer ek_\x80_\xfe", "\xa0"):
            headers = {name: value, "Content-Type": "application/json"}
            for path in ("/v1/chat/completions", "/v1/messages", "/admin/v1/accounts"):
                gateway.check(Call("POST", path, body.encode(), headers))
        gateway.check(Call("GET", "/metrics", b"", {name: "Bearer \xe9"}))


def test_bodies_that_are_not_json_objects(target: tuple[Target, str, GatewayProcess]) -> None:
    gateway, key, _ = target
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    corpus = [
        b"",
        b"{",
        b"null",
        b"[]",
        b'"text"',
        b"1e999999",
        b'{"model": "local/echo", "messages": "\xff"}',
        b'{"model": "local/\xc3\x28echo"}',
        b'{"model": "\\ud800"}',
        b"\xef\xbb\xbf{}",
        b'{"a": 1, "a": 2}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b'{"messages": [' + b'{"role": "user", "content": "x"},' * 20_000 + b"{}]}",
        b'{"model": "local/echo", "messages": [{"role": "user", "content": "'
        + b"x" * 4_000_000
        + b'"}], "max_tokens": 1}',
    ]
    for path, _ in INFERENCE.values():
        for body in corpus:
            gateway.check(Call("POST", path, body, headers))


GEMINI = "/v1beta/models/local-echo:generateContent"
GEMINI_SSE = "/v1beta/models/local-echo:streamGenerateContent?alt=sse"


def _gemini_part(part: Any, **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": "see"}, part]}], **extra}


def _tool_result(content: Any) -> dict[str, Any]:
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": content}
    return {
        "model": "local/echo",
        "max_tokens": 16,
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f"}]},
            {"role": "user", "content": [result]},
        ],
    }


def _echo_tool(parameters: Any, stream: bool = False) -> dict[str, Any]:
    tool = {"type": "function", "function": {"name": "f", "parameters": parameters}}
    return {"model": "local/echo", "messages": MESSAGES, "tools": [tool], "stream": stream}


def _deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


MESSAGES = [{"role": "user", "content": "hi"}]
# Bodies that answered 500 before (found by the fuzzers here and in tests/soak), and what they
# answer now: (path, body, status, the field a 400 names).
FOUND_500: list[tuple[str, dict[str, Any], int, str]] = [
    (GEMINI, _gemini_part({"inlineData": None}), 400, "contents[0].parts[1].inlineData"),
    (GEMINI, _gemini_part({"inline_data": "AAAA"}), 400, "contents[0].parts[1].inlineData"),
    (GEMINI_SSE, _gemini_part({"fileData": 1}), 400, "contents[0].parts[1].fileData"),
    (GEMINI, _gemini_part({"fileData": []}), 400, "contents[0].parts[1].fileData"),
    (GEMINI, _gemini_part({"file_data": "gs://b/o"}), 400, "contents[0].parts[1].fileData"),
    (
        GEMINI,
        _gemini_part({"inlineData": {"mimeType": "image/png", "data": "AA"}, "fileData": 5}),
        400,
        "contents[0].parts[1]",
    ),
    (
        GEMINI,
        _gemini_part({"text": "x"}, generationConfig={"responseModalities": 1.5}),
        400,
        "generationConfig.responseModalities",
    ),
    ("/v1/messages", _tool_result([5]), 400, "messages[2].content[0].content[0]"),
    ("/v1/messages", _tool_result(["text"]), 400, "messages[2].content[0].content[0]"),
    (
        "/v1/messages",
        _tool_result([None, {"type": "text", "text": "x"}]),
        400,
        "messages[2].content[0].content[0]",
    ),
    ("/v1/chat/completions", _echo_tool({"enum": {"a": 1}}), 200, ""),
    ("/v1/chat/completions", _echo_tool({"properties": [1, 2]}), 200, ""),
    (
        "/v1/chat/completions",
        _echo_tool({"type": "object", "properties": {"a": {}}, "required": [{"x": 1}]}),
        200,
        "",
    ),
    ("/v1/chat/completions", _echo_tool({"properties": {"a": {}}, "required": 5}), 200, ""),
    ("/v1/chat/completions", _echo_tool({"type": "array", "items": _deep(300)}), 400, ""),
    (
        "/v1/responses",
        {
            "model": "local/echo",
            "input": "hi",
            "stream": True,
            "text": {"format": {"type": "json_object", "schema": _deep(300)}},
        },
        400,
        "",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "field"), FOUND_500)
def test_bodies_that_answered_500_name_the_field(
    target: tuple[Target, str, GatewayProcess],
    path: str,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    gateway, key, _ = target
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    raw = json.dumps(body).encode()  # orjson writes at most 254 levels
    answer_status, answer, _ = gateway.send(Call("POST", path, raw, headers))
    assert answer_status == status, answer[:400]
    if status == 400:
        message = orjson.loads(answer)["error"]["message"]
        assert f"'{field}" in message if field else "nested more than 128 levels" in message


def _hypothesis(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


@_hypothesis(600)
@given(data=st.data())
def test_fuzz_every_public_route(
    target: tuple[Target, str, GatewayProcess], data: st.DataObject
) -> None:
    gateway, key, _ = target
    gateway.check(data.draw(inference_calls(key)))


@_hypothesis(500)
@given(data=st.data())
def test_fuzz_translated_calls_to_the_echo_model(
    target: tuple[Target, str, GatewayProcess], data: st.DataObject
) -> None:
    gateway, key, _ = target
    gateway.check(data.draw(corpus_calls(key)))


@_hypothesis(400)
@given(data=st.data())
def test_fuzz_the_admin_api(
    target: tuple[Target, str, GatewayProcess], data: st.DataObject
) -> None:
    gateway, _, _ = target
    gateway.check(data.draw(admin_calls()))


# Translated for every provider, in process: the live gateway above has only the echo model.

CATALOG = settings_for(gateway_env("memory://", None)).catalog
CLAUDE = next(m for m in CATALOG.models if CATALOG.provider_of(m).kind == "anthropic")


def _neutral(api: str, raw: bytes) -> n.Request:
    payload = parse_body(raw, "gemini" if api == "gemini" else None)
    if api == "chat":
        return parse_chat_request(payload)
    if api == "messages":
        return parse_messages_request(payload)
    if api == "gemini":
        return parse_gemini_request(payload, "m", False)
    return to_neutral_request(parse_params(payload), input_of(payload), "m", False)


def _upstream_bodies(req: n.Request) -> Iterator[Callable[[], dict[str, Any]]]:
    yield lambda: request_body(req, False)
    yield lambda: gemini_body(req)
    yield lambda: messages_body(req, CLAUDE, True)[0]
    for provider in CATALOG.providers.values():
        yield functools.partial(chat_body, req, provider, False)


def _every_upstream_body(req: n.Request) -> None:
    """The request as each provider API's body, written as it is sent (400s allowed)."""
    for build in _upstream_bodies(req):
        try:
            orjson.dumps(build())
        except GatewayError as err:
            assert err.status == 400, err.message


@_hypothesis(400)
@given(api=st.sampled_from(sorted(API_BODIES)), data=st.data())
def test_fuzz_translation_for_every_provider(api: str, data: st.DataObject) -> None:
    body = data.draw(mutated(data.draw(API_BODIES[api]())))
    try:
        req = _neutral(api, json.dumps(body).encode())
    except GatewayError as err:
        assert err.status == 400, err.message
        return
    _every_upstream_body(req)


def test_numbers_past_what_a_provider_takes_are_refused_when_read() -> None:
    # A Gemini seed or topK of 1e300 was made an integer orjson cannot write: 500 on the way to
    # any other provider.
    for key in ("seed", "topK"):
        body = {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {key: 1e300}}
        with pytest.raises(GatewayError) as caught:
            _neutral("gemini", json.dumps(body).encode())
        assert caught.value.param == f"generationConfig.{key}"


async def test_another_accounts_response_and_an_unknown_one_look_alike(
    gateway: Live,
) -> None:
    assert gateway.http is not None
    mine, theirs = await gateway.tenant(), await gateway.tenant()
    async with gateway.http.post(
        f"{gateway.url}/v1/responses",
        json={"model": "local/echo", "input": "secret", "store": True},
        headers={"Authorization": f"Bearer {mine.key}"},
    ) as resp:
        assert resp.status == 200
        stored = (await resp.json())["id"]
    unknown = "resp_" + secrets.token_hex(len(stored.removeprefix("resp_")) // 2)
    for method, suffix in (
        ("GET", ""),
        ("GET", "/input_items"),
        ("GET", "?stream=true"),
        ("POST", "/cancel"),
        ("DELETE", ""),
    ):
        answers = []
        for rid in (stored, unknown):
            async with gateway.http.request(
                method,
                f"{gateway.url}/v1/responses/{rid}{suffix}",
                headers={"Authorization": f"Bearer {theirs.key}"},
            ) as resp:
                body = (await resp.read()).replace(rid.encode(), b"<id>")
                answers.append((resp.status, body))
        assert answers[0] == answers[1], (method, suffix, answers)
        assert answers[0][0] == 404

"""What one request may cost the gateway to parse and walk (`edge.request_limits`): a body's
objects, arrays and elements counted on its raw bytes before it is parsed, its nesting, and each
API's arrays before a translator walks them. Every refusal is a 400 naming the cap; a body at a
cap is served."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from edge.body import parse_body
from edge.errors import GatewayError
from edge.request_limits import (
    MAX_CONTAINERS,
    MAX_DEPTH,
    MAX_ELEMENTS,
    MAX_ITEMS,
    MAX_LIST,
    MAX_PARTS,
    MAX_TOOLS,
    check_structure,
)
from edge.translate.anthropic_request import parse_messages_request
from edge.translate.chat_request import parse_chat_request
from edge.translate.gemini_request import parse_gemini_request
from edge.translate.responses_request import input_of, parse_params, to_neutral_request
from tests.support.clock import Stopwatch
from tests.support.gateway import (
    ADMIN_TOKEN,
    GatewayProcess,
    Live,
    gateway_env,
    settings_for,
    start_live,
    stop_live,
)
from tests.support.rawhttp import connect, read_answer

pytestmark = pytest.mark.timeout(240)
ECHO = "local/echo"
GEMINI = "/v1beta/models/local-echo:generateContent"


# The structure count, before parsing ---------------------------------------------------------


def _code(call: Callable[[], Any]) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        call()
    assert caught.value.status == 400
    return caught.value


def test_objects_and_arrays_past_the_cap_are_refused_before_parsing() -> None:
    inside = b'{"a":1},' * MAX_CONTAINERS
    err = _code(lambda: check_structure(b'{"m":[' + inside + b"1]}"))
    assert err.code == "body_too_complex"
    # The body's own object and array count too: two more than the list holds.
    assert f"{MAX_CONTAINERS:,}" in err.message and f"{MAX_CONTAINERS + 2:,}" in err.message
    check_structure(b'{"m":[' + b'{"a":1},' * (MAX_CONTAINERS - 2) + b"1]}")  # at the cap


def test_elements_past_the_cap_are_refused_before_parsing() -> None:
    err = _code(lambda: check_structure(b'{"m":[' + b"0," * (MAX_ELEMENTS + 1) + b"0]}"))
    assert err.code == "body_too_complex"
    assert f"{MAX_ELEMENTS:,}" in err.message
    check_structure(b'{"m":[' + b"0," * MAX_ELEMENTS + b"0]}")  # at the cap


def test_a_body_too_short_to_pass_a_cap_is_not_counted() -> None:
    # Brackets inside strings count (an upper bound), but a body shorter than two bytes per
    # container and one per element cannot pass either cap, so it is never counted at all.
    short = orjson.dumps({"text": "[" * (2 * MAX_CONTAINERS - 20)})
    assert len(short) <= 2 * MAX_CONTAINERS
    check_structure(short)


def test_depth_is_checked_alike_with_few_brackets_and_with_many() -> None:
    # Few brackets in the text bound its depth (no wrapping needed); brackets inside strings
    # only make the check take its longer way, never refuse.
    at_cap = b'{"a":' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    assert parse_body(at_cap) == {"a": orjson.loads(at_cap)["a"]}
    past = b'{"a":' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}"
    assert _code(lambda: parse_body(past)).code == "body_too_deep"
    noisy = orjson.dumps({"a": "[{" * MAX_DEPTH, "b": {"c": 1}})
    assert parse_body(noisy)["b"] == {"c": 1}
    duplicated = b'{"a":"[{' + b"[" * MAX_DEPTH + b'","a":1}'
    assert _code(lambda: parse_body(duplicated)).code == "duplicate_key"
    assert _code(lambda: parse_body(b'{"a":1,"a":2}')).code == "duplicate_key"


def test_the_count_costs_little_on_a_large_body() -> None:
    # Printed, not asserted: the whole cost of the check, before any Python object is made.
    body = orjson.dumps(
        {"messages": [{"role": "user", "content": "a, {b} [c] " * 8} for _ in range(10_000)]}
    )
    assert len(body) > 1_000_000
    runs = 20
    clock = Stopwatch()
    for _ in range(runs):
        check_structure(body)
    per_call = clock.elapsed() / runs
    clock = Stopwatch()
    for _ in range(runs):
        orjson.loads(body)
    parse = clock.elapsed() / runs
    print(
        f"structure count on a {len(body) / 1e6:.1f} MB body: {per_call * 1e3:.2f} ms "
        f"(parsing it: {parse * 1e3:.2f} ms)"
    )


# Each API's arrays, before translation -------------------------------------------------------

TEXT = {"role": "user", "content": "hi"}
PART = {"type": "text", "text": "hi"}


def _chat(**fields: Any) -> Callable[[], Any]:
    return lambda: parse_chat_request({"model": ECHO, "messages": [TEXT], **fields})


def _messages(**fields: Any) -> Callable[[], Any]:
    body = {"model": ECHO, "max_tokens": 8, "messages": [TEXT], **fields}
    return lambda: parse_messages_request(body)


def _gemini(**fields: Any) -> Callable[[], Any]:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], **fields}
    return lambda: parse_gemini_request(body, ECHO, False)


def _responses(**fields: Any) -> Callable[[], Any]:
    body = {"model": ECHO, "input": [TEXT], **fields}

    def parse() -> Any:
        params = parse_params(body)
        return to_neutral_request(params, input_of(body), ECHO, False)

    return parse


def _fn(i: int) -> dict[str, Any]:
    return {"type": "function", "function": {"name": f"f{i}"}}


CAPS: list[tuple[str, Callable[[int], Callable[[], Any]], str, int]] = [
    ("chat messages", lambda k: _chat(messages=[TEXT] * k), "messages", MAX_ITEMS),
    (
        "chat parts",
        lambda k: _chat(messages=[{"role": "user", "content": [PART] * k}]),
        "messages[0].content",
        MAX_PARTS,
    ),
    (
        "chat tool calls",
        lambda k: _chat(
            messages=[
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f"}}] * k,
                }
            ]
        ),
        "messages[0].tool_calls",
        MAX_PARTS,
    ),
    ("chat tools", lambda k: _chat(tools=[_fn(i) for i in range(k)]), "tools", MAX_TOOLS),
    ("chat stop", lambda k: _chat(stop=["x"] * k), "stop", MAX_LIST),
    ("messages messages", lambda k: _messages(messages=[TEXT] * k), "messages", MAX_ITEMS),
    (
        "messages blocks",
        lambda k: _messages(messages=[{"role": "user", "content": [PART] * k}]),
        "messages[0].content",
        MAX_PARTS,
    ),
    (
        "messages tool result blocks",
        lambda k: _messages(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t", "content": [PART] * k}],
                }
            ]
        ),
        "messages[0].content[0].content",
        MAX_PARTS,
    ),
    ("messages system", lambda k: _messages(system=[PART] * k), "system", MAX_PARTS),
    (
        "messages tools",
        lambda k: _messages(
            tools=[{"name": f"f{i}", "input_schema": {"type": "object"}} for i in range(k)]
        ),
        "tools",
        MAX_TOOLS,
    ),
    (
        "messages stop",
        lambda k: _messages(stop_sequences=["x"] * k),
        "stop_sequences",
        MAX_LIST,
    ),
    (
        "gemini contents",
        lambda k: _gemini(contents=[{"parts": [{"text": "x"}]}] * k),
        "contents",
        MAX_ITEMS,
    ),
    (
        "gemini parts",
        lambda k: _gemini(contents=[{"parts": [{"text": "x"}] * k}]),
        "contents[0].parts",
        MAX_PARTS,
    ),
    (
        "gemini system parts",
        lambda k: _gemini(systemInstruction={"parts": [{"text": "x"}] * k}),
        "systemInstruction.parts",
        MAX_PARTS,
    ),
    (
        "gemini declarations",
        lambda k: _gemini(
            tools=[
                {"functionDeclarations": [{"name": f"f{i}"} for i in range(k // 2)]},
                {"functionDeclarations": [{"name": f"g{i}"} for i in range(k - k // 2)]},
            ]
        ),
        "tools[1].functionDeclarations",
        MAX_TOOLS,
    ),
    (
        "gemini stop",
        lambda k: _gemini(generationConfig={"stopSequences": ["x"] * k}),
        "generationConfig.stopSequences",
        MAX_LIST,
    ),
    ("responses input", lambda k: _responses(input=[TEXT] * k), "input", MAX_ITEMS),
    (
        "responses parts",
        lambda k: _responses(
            input=[{"role": "user", "content": [{"type": "input_text", "text": "x"}] * k}]
        ),
        "input[0].content",
        MAX_PARTS,
    ),
    (
        "responses output parts",
        lambda k: _responses(
            input=[
                {
                    "type": "function_call_output",
                    "call_id": "c",
                    "output": [{"type": "input_text", "text": "x"}] * k,
                }
            ]
        ),
        "input[0].output",
        MAX_PARTS,
    ),
    (
        "responses tools",
        lambda k: _responses(tools=[{"type": "function", "name": f"f{i}"} for i in range(k)]),
        "tools",
        MAX_TOOLS,
    ),
]


@pytest.mark.parametrize(("case", "build", "param", "cap"), CAPS, ids=[c[0] for c in CAPS])
def test_each_api_s_arrays_are_capped_before_translation(
    case: str, build: Callable[[int], Callable[[], Any]], param: str, cap: int
) -> None:
    build(cap)()  # at the cap: translated
    err = _code(build(cap + 1))
    assert err.code == "array_above_max_length", err.message
    assert err.param == param
    assert (
        f"'{param}'" in err.message and f"{cap:,}" in err.message and f"{cap + 1:,}" in err.message
    )


def test_a_chained_transcript_counts_toward_the_items_cap() -> None:
    body = {"model": ECHO, "input": [TEXT] * 10}
    history = [{"type": "message", "role": "user", "content": [PART]}] * (MAX_ITEMS - 9)
    err = _code(
        lambda: to_neutral_request(parse_params(body), history + input_of(body), ECHO, False)
    )
    assert err.param == "input" and "previous_response_id" in err.message


# Through a live gateway ----------------------------------------------------------------------


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    """An in-process gateway on the memory store: only the echo model answers."""
    gateway = await start_live(settings_for(gateway_env("memory://", None)))
    yield gateway
    await stop_live(gateway)


def _many(count: int, item: bytes) -> bytes:
    return b",".join([item] * count)


def _item_bodies(count: int) -> dict[str, tuple[str, bytes]]:
    text = b'{"role":"user","content":"x"}'
    return {
        "messages": (
            "/v1/chat/completions",
            b'{"model":"local/echo","max_tokens":4,"messages":[' + _many(count, text) + b"]}",
        ),
        "anthropic messages": (
            "/v1/messages",
            b'{"model":"local/echo","max_tokens":4,"messages":[' + _many(count, text) + b"]}",
        ),
        "contents": (
            GEMINI,
            b'{"contents":[' + _many(count, b'{"role":"user","parts":[{"text":"x"}]}') + b"]}",
        ),
        "input": (
            "/v1/responses",
            b'{"model":"local/echo","store":false,"input":[' + _many(count, text) + b"]}",
        ),
    }


async def _post(gateway: Live, key: str, path: str, body: bytes) -> tuple[int, Any]:
    assert gateway.http is not None
    async with gateway.http.post(
        gateway.url + path,
        data=io.BytesIO(body),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    ) as resp:
        return resp.status, await resp.json(content_type=None)


def _message(answer: Any) -> str:
    error = answer["error"]
    return str(error["message"])


async def test_one_item_past_the_cap_is_refused_on_every_api(live: Live) -> None:
    tenant = await live.tenant()
    for name, (path, body) in _item_bodies(MAX_ITEMS + 1).items():
        status, answer = await _post(live, tenant.key, path, body)
        assert status == 400, (name, answer)
        field = name.split()[-1]
        assert f"'{field}'" in _message(answer) and f"{MAX_ITEMS:,}" in _message(answer), answer


async def test_a_body_at_the_items_cap_is_served(live: Live) -> None:
    tenant = await live.tenant()
    path, body = _item_bodies(MAX_ITEMS)["messages"]
    clock = Stopwatch()
    status, answer = await _post(live, tenant.key, path, body)
    print(f"{MAX_ITEMS:,} messages to the echo model, answered in {clock.elapsed():.2f} s")
    assert status == 200, answer
    assert answer["choices"][0]["message"]["content"] == "Echo: x"


def _nested(depth: int) -> Any:
    value: Any = {"type": "string"}
    for _ in range(depth):
        value = {"type": "array", "items": value}
    return value


async def test_nesting_past_the_cap_is_refused_and_at_it_is_served(live: Live) -> None:
    tenant = await live.tenant()
    # The schema sits 5 levels down (body, tools, a tool, function, parameters): the echo model
    # fills in arguments from it, walking every level.
    for depth, expected in ((MAX_DEPTH - 5, 200), (MAX_DEPTH - 4, 400), (600, 400)):
        tool = {"type": "function", "function": {"name": "f", "parameters": _nested(depth)}}
        body = {"model": ECHO, "messages": [TEXT], "tools": [tool]}
        raw = json.dumps(body).encode()  # orjson writes at most 254 levels
        status, answer = await _post(live, tenant.key, "/v1/chat/completions", raw)
        assert status == expected, (depth, answer)
        if status == 400:
            assert answer["error"]["code"] == "body_too_deep"
            assert f"{MAX_DEPTH} levels" in _message(answer)


async def test_arguments_nested_past_what_orjson_writes_are_refused(live: Live) -> None:
    # 300 levels: parsed by orjson (1,024), but not written back (254) by the translator that
    # turns a tool call's input into argument text; this once answered 500.
    args: Any = 1
    for _ in range(300):
        args = [args]
    tenant = await live.tenant()
    body = {
        "model": ECHO,
        "max_tokens": 8,
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"a": args}}],
            },
        ],
    }
    status, answer = await _post(live, tenant.key, "/v1/messages", json.dumps(body).encode())
    assert status == 400 and answer["error"]["code"] == "body_too_deep", answer


# Through `edge serve`: what the process holds ------------------------------------------------


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


async def _key(url: str) -> str:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/admin/v1/accounts", json={"id": "acct_big"}, headers=auth):
            pass
        async with http.post(
            f"{url}/admin/v1/keys", json={"account": "acct_big"}, headers=auth
        ) as resp:
            assert resp.status == 201
            return str((await resp.json())["key"])


async def _send(url: str, key: str, path: str, body: bytes) -> tuple[int, Any]:
    reader, writer = await connect(url)
    try:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        answer = await read_answer(reader, timeout=60)  # bounds the test's own run time
        return answer.status, answer.json()
    finally:
        writer.close()


@pytest.fixture
def process() -> Any:
    """`edge serve` on the memory store."""
    proc = GatewayProcess(gateway_env("memory://", None)).start()
    yield proc
    proc.stop()


async def test_tiny_objects_and_a_million_messages_never_become_python_objects(
    process: GatewayProcess,
) -> None:
    assert process.proc is not None
    key = await _key(process.url)
    tiny = b'{"model":"local/echo","messages":[' + _many(2_000_000, b'{"a":1}') + b"]}"
    tiny += b" " * (27 * 1024 * 1024 - len(tiny))  # 27 MiB, as sent in the report
    million = (
        b'{"model":"local/echo","messages":['
        + _many(1_000_000, b'{"role":"user","content":"x"}')
        + b"]}"
    )
    await _send(process.url, key, "/v1/chat/completions", b'{"model":"local/echo"}')  # warm up
    before = _memory_kib(process.proc.pid, "VmHWM")
    for name, body in (("2,000,000 tiny objects", tiny), ("1,000,000 messages", million)):
        clock = Stopwatch()
        status, answer = await _send(process.url, key, "/v1/chat/completions", body)
        rise = (_memory_kib(process.proc.pid, "VmHWM") - before) / 1024
        print(
            f"{name} ({len(body) / 2**20:.1f} MiB): {status} in {clock.elapsed():.2f} s, "
            f"peak RSS +{rise:.1f} MB"
        )
        assert status == 400, answer
        assert answer["error"]["code"] == "body_too_complex"
        assert f"{MAX_CONTAINERS:,}" in answer["error"]["message"]
    rise_mb = (_memory_kib(process.proc.pid, "VmHWM") - before) / 1024
    # The bodies themselves are held while read (27 + 28 MiB): parsing them took ~600 MB.
    assert rise_mb < 100
    assert process.proc.poll() is None

"""A body is read one way only: a key twice in one object (after unescaping) is refused with
400 naming it, before routing, pricing or any upstream call, since the raw bytes that go
upstream hold both and a provider may read the other one.

Run as a script (`python -m tests.test_metering_duplicate_keys`) to print what the check costs.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.body import _colons_walked, duplicate_key
from edge.errors import ERROR_INFO
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway import Live

HI = b'[{"role":"user","content":"hi"}]'


def _reference(raw: bytes) -> str | None:
    """The first duplicate key, found the slow and obvious way."""
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> None:
        keys = [k for k, _ in items]
        for i, key in enumerate(keys):
            if key in keys[:i] and not found:
                found.append(key)

    json.loads(raw, object_pairs_hook=pairs)
    return found[0] if found else None


def _check(raw: bytes) -> str | None:
    return duplicate_key(raw, orjson.loads(raw))


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"model":"o1-pro","x":1,"model":"gpt-5-4-nano"}', "model"),
        (b'{"model":"o1-pro","mod\\u0065l":"gpt-5-4-nano"}', "model"),
        (b'{"a":{"stream":true,"stream":false}}', "stream"),
        (b'{"a":[{"k":1},{"k":2,"k":3}]}', "k"),
        (b'{"a" : 1 ,\n "a"\t:\r2}', "a"),  # whitespace before the colons
        (b'{"a":"x:y","a":"z"}', "a"),  # the dropped value held a colon
        (b'{"a":"\\u003a","a":"c"}', "a"),  # an escaped colon
        (b'{"":1,"":2}', ""),
        (b'{"a\\\\":1,"a\\\\":2}', "a\\"),  # a key ending in a backslash
        (b'{"ok":1,"he said \\"x\\": y":{"c:d":"e:f"}}', None),
        (b'{"a":"\\u003a","b":"\\u003A:"}', None),  # escaped colons, no duplicate
        (b'{"a":"literal \\\\u003a text"}', None),  # over-counted: the exact check clears it
        (b'{"messages":' + HI + b',"model":"m"}', None),
    ],
)
def test_detector_finds_exactly_the_duplicates(raw: bytes, key: str | None) -> None:
    assert _reference(raw) == key
    assert _check(raw) == key


# Property: whatever the escaping and whitespace, the detector agrees with the slow reference.


class Obj:
    """A JSON object as written: its pairs in order, duplicates allowed."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs


KEYS = st.text(alphabet='ab:"\\\u00e9', max_size=3)
TEXT = st.text(alphabet='ab:"\\ \n\u00e9\u20ac', max_size=8)
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), TEXT),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(st.tuples(KEYS, inner), max_size=4).map(Obj),
    ),
    max_leaves=24,
)


def _string(text: str, rng: random.Random) -> str:
    out = []
    for ch in text:
        if rng.random() < 0.3 or ch in '"\\' or ch < " ":
            if ch in '"\\' and rng.random() < 0.5:
                out.append("\\" + ch)
            else:
                digits = f"{ord(ch):04x}"
                out.append("\\u" + (digits.upper() if rng.random() < 0.5 else digits))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _space(rng: random.Random) -> str:
    return rng.choice(["", "", " ", "\n", "\t ", "\r\n"])


def _write(value: Any, rng: random.Random) -> str:
    if isinstance(value, Obj):
        items = [
            f"{_space(rng)}{_string(k, rng)}{_space(rng)}:{_space(rng)}{_write(v, rng)}"
            for k, v in value.pairs
        ]
        return "{" + ",".join(items) + _space(rng) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_space(rng) + _write(v, rng) for v in value) + _space(rng) + "]"
    if isinstance(value, str):
        return _string(value, rng)
    return json.dumps(value)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(KEYS, VALUES), max_size=5).map(Obj), st.randoms(use_true_random=False))
def test_detector_agrees_with_the_slow_reference(top: Obj, rng: random.Random) -> None:
    raw = _write(top, rng).encode()
    assert _check(raw) == _reference(raw)
    # The two ways of counting the parsed side (its compact serialisation, or a walk where
    # orjson will not write it: nested deeper than 254 levels) agree, so either may decide.
    payload = orjson.loads(raw)
    assert _colons_walked(payload) == orjson.dumps(payload).count(b":")


# Through a live gateway: 400 in the route's shape, naming the key; the provider gets nothing.

CHAT = "/v1/chat/completions"
GEMINI = "/v1beta/models/gemini-2-5-flash:generateContent"
CONTENTS = b'[{"role":"user","parts":[{"text":"hi"}]}]'
LIVE_CASES = [
    (CHAT, b'{"model":"o1-pro","messages":' + HI + b',"model":"gpt-5-4-nano"}', "model"),
    (CHAT, b'{"model":"o1-pro","messages":' + HI + b',"mod\\u0065l":"gpt-5-4-nano"}', "model"),
    (CHAT, b'{"model":"gpt-5-4","stream":false,"messages":' + HI + b',"stream":true}', "stream"),
    (
        CHAT,
        b'{"model":"gpt-5-4","max_tokens":1,"messages":' + HI + b',"max_tokens":60000}',
        "max_tokens",
    ),
    (
        CHAT,
        b'{"model":"gpt-5-4","messages":[{"role":"user","content":"a","content":"b"}]}',
        "content",
    ),
    (
        "/v1/responses",
        b'{"model":"gpt-5-4","input":"hi","max_output_tokens":1,"max_output_tokens":60000}',
        "max_output_tokens",
    ),
    (
        "/v1/messages",
        b'{"model":"claude-sonnet-4-6","max_tokens":1,"messages":' + HI + b',"max_tokens":60000}',
        "max_tokens",
    ),
    (
        GEMINI,
        b'{"contents":'
        + CONTENTS
        + b',"generationConfig":{"maxOutputTokens":1,"maxOutputTokens":60000}}',
        "maxOutputTokens",
    ),
]


@pytest.mark.parametrize(("path", "raw", "key"), LIVE_CASES)
async def test_duplicate_key_is_refused_before_anything_else(
    gateway: Live, fake: FakeUpstream, path: str, raw: bytes, key: str
) -> None:
    tenant = await gateway.tenant()
    assert gateway.http is not None
    headers = {
        "Authorization": f"Bearer {tenant.key}",
        "x-goog-api-key": tenant.key,
        "Content-Type": "application/json",
    }
    async with gateway.http.post(f"{gateway.url}{path}", data=raw, headers=headers) as resp:
        assert resp.status == 400
        body = await resp.json()
    message = f"Duplicate key '{key}' in the request body."
    if path == "/v1/messages":
        assert body["type"] == "error"
        assert body["error"]["message"] == message
        assert body["error"]["code"] == "duplicate_key"
    elif path == GEMINI:
        assert (body["error"]["message"], body["error"]["status"]) == (message, "INVALID_ARGUMENT")
        assert body["error"]["details"][0] == {
            "@type": ERROR_INFO,
            "reason": "duplicate_key",
            "domain": "edge",
        }
    else:
        assert body["error"]["message"] == message
        assert (body["error"]["param"], body["error"]["code"]) == (key, "duplicate_key")
    assert fake.requests == []


# What the check costs (printed, never asserted).


def _chat_body(messages: int, text: int) -> bytes:
    words = ('Say "hello": then a list, a URL https://x.y/z and 42. ' * (text // 50 + 1))[:text]
    turns = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": words} for i in range(messages)
    ]
    return orjson.dumps({"model": "gpt-5-4", "messages": turns, "max_tokens": 100})


def _cost(fn: Any, arg: Any) -> float:
    """Seconds per call, the best of five runs."""
    runs = max(1, int(20_000 / max(1, len(arg) // 1000 + 1)))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()  # a printed figure only (run as a script, never asserted)
        for _ in range(runs):
            fn(arg)
        best = min(best, (time.perf_counter() - start) / runs)  # a printed figure only
    return best


def main() -> None:
    """Print the cost of the duplicate check beside orjson's own parse."""
    many_keys = orjson.dumps({"model": "m", "items": [{"k": i, "v": "x"} for i in range(60_000)]})
    bodies = {
        "4 KB chat": _chat_body(8, 480),
        "1 MB chat": _chat_body(200, 5200),
        "1 MB of small objects": many_keys,
        "1 MB chat, exact path": _chat_body(200, 5200)[:-1] + b',"max_tokens":1}',
    }
    print(f"{'body':24} {'bytes':>9} {'parse':>10} {'+check':>10} {'check/MB':>10}")
    for name, raw in bodies.items():
        payload = orjson.loads(raw)
        parse = _cost(orjson.loads, raw)
        check = _cost(lambda r, p=payload: duplicate_key(r, p), raw)
        per_mb = check / (len(raw) / 1_048_576)
        print(
            f"{name:24} {len(raw):9d} {parse * 1e6:8.1f}us {check * 1e6:8.1f}us "
            f"{per_mb * 1e3:8.3f}ms"
        )


if __name__ == "__main__":
    main()

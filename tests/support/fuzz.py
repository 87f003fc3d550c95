"""Hypothesis strategies for requests to every public route and the admin API, and the target
they are sent to: a real `edge serve` process, over a plain keep-alive HTTP/1.1 connection.

The invariant checked on every answer: never a 500, always a JSON error body on a 4xx, and the
process still alive. The requests are valid ones with fields mutated to wrong types, dropped or
added; arbitrary bytes; deeply nested or invalid JSON and UTF-8; odd paths, queries, headers,
encodings and credentials."""

from __future__ import annotations

import gzip
import http.client
import json
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from hypothesis import strategies as st

from tests.support.fuzz_corpus import corpus_requests
from tests.support.gateway import ADMIN_TOKEN

MESSAGES = [{"role": "user", "content": "hi"}]
TOOL = {
    "type": "function",
    "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
}
# Valid requests, one per route: the fuzzer mutates them.
INFERENCE: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": (
        "/v1/chat/completions",
        {
            "model": "local/echo",
            "messages": MESSAGES,
            "stream": False,
            "max_tokens": 16,
            "temperature": 0.5,
            "tools": [TOOL],
            "tool_choice": "auto",
            "response_format": {"type": "text"},
            "stream_options": {"include_usage": True},
            "user": "u",
        },
    ),
    "responses": (
        "/v1/responses",
        {
            "model": "local/echo",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
            "instructions": "be brief",
            "store": False,
            "stream": False,
            "max_output_tokens": 16,
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "text": {"format": {"type": "text"}},
            "metadata": {"k": "v"},
        },
    ),
    "messages": (
        "/v1/messages",
        {
            "model": "local/echo",
            "max_tokens": 16,
            "system": "be brief",
            "messages": MESSAGES,
            "stream": False,
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "auto"},
            "metadata": {"user_id": "u"},
        },
    ),
    "gemini": (
        "/v1beta/models/local-echo:generateContent",
        {
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "generationConfig": {"maxOutputTokens": 16, "temperature": 0.5},
            "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object"}}]}],
        },
    ),
}
ADMIN_BODIES: dict[str, dict[str, Any]] = {
    "POST /admin/v1/accounts": {"id": "acct_fuzz", "plan": "default", "name": "x"},
    "POST /admin/v1/accounts/{account}/branches": {"id": "br-fuzz", "parent": None},
    "POST /admin/v1/keys": {
        "account": "acct_fuzz",
        "branch": "br-fuzz",
        "scopes": ["ai_gateway:invoke"],
        "name": "k",
    },
    "PUT /admin/v1/accounts/{account}/quota": {
        "requests_per_minute": 10,
        "tokens_per_day": 1000,
        "max_concurrent": 2,
    },
    "PUT /admin/v1/keys/{key_id}/quota": {"requests_per_minute": 10, "cost_per_month_usd": 1.5},
    "PUT /admin/v1/accounts/{account}/plan": {"plan": "default"},
    "PUT /admin/v1/keys/{key_id}/plan": {"plan": "default"},
    "POST /admin/v1/keys/{key_id}/rotate": {"grace_seconds": 60},
    "POST /admin/v1/accounts/{account}/block": {},
    "POST /admin/v1/accounts/{account}/unblock": {},
}
ADMIN_READS = [
    "DELETE /admin/v1/accounts/{account}/branches/{branch}",
    "DELETE /admin/v1/accounts/{account}/quota",
    "DELETE /admin/v1/keys/{key_id}",
    "DELETE /admin/v1/keys/{key_id}/quota",
    "GET /admin/v1/accounts",
    "GET /admin/v1/accounts/{account}",
    "GET /admin/v1/accounts/{account}/branches",
    "GET /admin/v1/accounts/{account}/quota",
    "GET /admin/v1/accounts/{account}/usage",
    "GET /admin/v1/audit",
    "GET /admin/v1/keys",
    "GET /admin/v1/keys/{key_id}",
    "GET /admin/v1/keys/{key_id}/quota",
    "GET /admin/v1/keys/{key_id}/usage",
    "GET /admin/v1/openapi.json",
    "GET /admin/v1/plans",
]
PUBLIC_READS = [
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /v1/models",
    "GET /v1/models/{model}",
    "GET /v1/responses/{response_id}",
    "GET /v1/responses/{response_id}/input_items",
    "DELETE /v1/responses/{response_id}",
    "POST /v1/responses/{response_id}/cancel",
]

# Numbers at the edges of what a double or a 64-bit integer holds, for admin fields above all
# (a quota of 5e-324 bytes per token once made every call on its key answer 500).
EXTREME_NUMBERS: list[Any] = [5e-324, -5e-324, 1e308, -1e308, -0.0, 2**63, 2**64, -(2**63) - 1]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(EXTREME_NUMBERS)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
# Path segments: ordinary ids, ids of other shapes, and bytes a router should never trip on.
segments = st.one_of(
    st.sampled_from(["acct_fuzz", "br-fuzz", "resp_0123", "gpt-5-4", "..", ".", "%00", "a" * 300]),
    st.text(min_size=1, max_size=40).map(lambda s: quote(s, safe="")),
)


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> dict[str, Any]:
    """A valid body with some fields given other values (or types), dropped, or added."""
    body = dict(valid)
    names = (
        st.lists(st.sampled_from(sorted(valid)), max_size=3, unique=True) if valid else st.just([])
    )
    for name in draw(names):
        if draw(st.booleans()):
            body[name] = draw(json_values)
        else:
            body.pop(name, None)
    for _ in range(draw(st.integers(0, 2))):
        body[draw(st.text(max_size=12))] = draw(json_values)
    return body


def _dumps(value: Any) -> bytes:
    # The standard library's encoder: orjson refuses integers past 64 bits, which are exactly
    # the kind of value worth sending.
    return json.dumps(value).encode()


def _nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@st.composite
def bodies(draw: st.DrawFn, valid: dict[str, Any] | None) -> bytes:
    """A request body: usually a mutated valid one, sometimes anything at all."""
    choice = draw(st.integers(0, 9))
    if valid is not None and choice < 6:
        return _dumps(draw(mutated(valid)))
    if choice == 6:
        depth = draw(st.sampled_from([64, 1000, 5000, 100_000]))
        return _nested(depth, draw(st.sampled_from(["array", "object"])))
    if choice == 7:  # invalid UTF-8 inside otherwise valid JSON
        return b'{"model": "local/echo", "messages": [{"role": "user", "content": "\xff\xfe"}]}'
    if choice == 8:
        return draw(st.binary(max_size=200))
    return _dumps(draw(json_values))


# Header values as sent on the wire (Latin-1): printable ASCII, and sometimes bytes past it.
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60
) | st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=60,
)


@dataclass
class Call:
    """One request to send."""

    method: str
    path: str
    body: bytes
    headers: dict[str, str]
    source: str = ""  # which strategy made it, for the figures a run prints


@st.composite
def credentials(draw: st.DrawFn, key: str, admin: bool) -> dict[str, str]:
    """Valid, missing, malformed or misplaced credentials."""
    good = ADMIN_TOKEN if admin else key
    kind = draw(st.integers(0, 7))
    if kind <= 3:
        return {"Authorization": f"Bearer {good}"}
    if kind == 4:
        return {}
    if kind == 5:
        return {"x-api-key": good, "x-goog-api-key": draw(header_values)}
    if kind == 6:  # JWT-looking garbage, or an API key of the right shape but wrong
        return {"Authorization": "Bearer " + draw(st.sampled_from(["a.b.c", "eyJ.eyJ.sig"]))}
    return {"Authorization": draw(header_values)}


def _fill(template: str, draw: st.DrawFn) -> str:
    out = template
    while "{" in out:
        start = out.index("{")
        end = out.index("}", start)
        out = out[:start] + draw(segments) + out[end + 1 :]
    return out


@st.composite
def inference_calls(draw: st.DrawFn, key: str) -> Call:
    """A call to a model route, or to another public route."""
    if draw(st.integers(0, 4)) == 0:
        method, template = draw(st.sampled_from(PUBLIC_READS)).split(" ", 1)
        path, valid = _fill(template, draw), None
    else:
        path, valid = draw(st.sampled_from(sorted(INFERENCE.values())))
        method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]))
    if draw(st.integers(0, 5)) == 0:
        path += "?" + draw(st.sampled_from(["alt=sse", "stream=true", "key=x", "a=%ff&b"]))
    headers = draw(credentials(key, admin=False))
    return _decorate(draw, Call(method, path, draw(bodies(valid)), headers))


@st.composite
def corpus_calls(draw: st.DrawFn, key: str) -> Call:
    """A call to the echo model on any client API from `tests.support.fuzz_corpus`: a valid
    body with a few odd values deep inside, sent with a valid key."""
    path, body = draw(corpus_requests())
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return Call("POST", path, body, headers, source="corpus")


@st.composite
def admin_calls(draw: st.DrawFn) -> Call:
    """A call to the admin API."""
    if draw(st.booleans()):
        route = draw(st.sampled_from(sorted(ADMIN_BODIES)))
        valid: dict[str, Any] | None = ADMIN_BODIES[route]
    else:
        route, valid = draw(st.sampled_from(ADMIN_READS)), None
    method, template = route.split(" ", 1)
    headers = draw(credentials("", admin=True))
    return _decorate(draw, Call(method, _fill(template, draw), draw(bodies(valid)), headers))


def _decorate(draw: st.DrawFn, call: Call) -> Call:
    """Sometimes: a content type, an encoding (maybe a lie), a request id, a branch, junk."""
    if draw(st.booleans()):
        call.headers["Content-Type"] = draw(
            st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1"])
        )
    encoding = draw(st.sampled_from([None, None, None, "gzip", "deflate", "gzip-lie", "br"]))
    if encoding == "gzip":
        call.body = gzip.compress(call.body)
    elif encoding == "deflate":
        call.body = zlib.compress(call.body)
    if encoding is not None:
        call.headers["Content-Encoding"] = encoding.removesuffix("-lie")
    for name in draw(
        st.lists(st.sampled_from(["x-request-id", "X-Branch-Id", "Accept", "X-Junk"]), max_size=2)
    ):
        call.headers[name] = draw(header_values)
    return call


class Target:
    """A gateway process reached over one keep-alive connection (reopened when closed)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn: http.client.HTTPConnection | None = None
        self.statuses: dict[int, int] = {}

    def send(self, call: Call) -> tuple[int, bytes, str]:
        """Send a call; (status, body, content type)."""
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request(call.method, call.path, body=call.body, headers=call.headers)
                resp = self.conn.getresponse()
                body = resp.read()
            except (http.client.HTTPException, ConnectionError):
                # The server closed a connection it had answered on (a 413, a parse error):
                # the next request goes on a new one.
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            if resp.will_close:
                self.conn.close()
                self.conn = None
            self.statuses[resp.status] = self.statuses.get(resp.status, 0) + 1
            return resp.status, body, resp.getheader("Content-Type", "")
        raise AssertionError("unreachable")

    def check(self, call: Call) -> None:
        """Send a call and hold the invariant: no 500, and errors are JSON."""
        try:
            status, body, content_type = self.send(call)
        except (BrokenPipeError, ConnectionResetError) as exc:
            # Refused before the body was read (an encoding it cannot decode, say): the server
            # answered and closed while the client was still sending, so the answer is lost.
            # Legitimate, provided the server is still there.
            self.close()
            alive, _, _ = self.send(Call("GET", "/healthz", b"", {}))
            assert alive == 200, f"no answer ({exc!r}) to {call.method} {call.path}, then down"
            self.statuses[0] = self.statuses.get(0, 0) + 1
            return
        except http.client.HTTPException as exc:
            # Described without the body: a failing example's repr would be megabytes.
            head = call.body[:120]
            raise AssertionError(
                f"no answer ({exc!r}) to {call.method} {call.path} {call.headers} "
                f"with {len(call.body)} body bytes starting {head!r}"
            ) from exc
        assert status != 500 and status < 600, (status, call, body[:300])
        if status >= 400 and call.method != "HEAD":
            assert content_type.startswith("application/json"), (status, call, body[:300])
            error = orjson.loads(body)
            assert isinstance(error, dict) and "error" in error, (call, body[:300])

    def close(self) -> None:
        """Drop the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def fuzz_tenants(target: Target) -> str:
    """Create the accounts the fuzzing aims at, and an invoke key on another account."""
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}

    def admin(path: str, body: dict[str, Any]) -> Any:
        status, raw, _ = target.send(Call("POST", f"/admin/v1{path}", orjson.dumps(body), auth))
        assert status == 201, raw
        return orjson.loads(raw)

    # The invoke key's account is not among the ids the admin fuzzing aims at (acct_fuzz):
    # a quota or a block set there would turn the rest of the run into 429s and 403s.
    admin("/accounts", {"id": "acct_fuzz"})
    admin("/accounts/acct_fuzz/branches", {"id": "br-fuzz", "parent": None})
    admin("/accounts", {"id": "acct_invoke"})
    admin("/accounts/acct_invoke/branches", {"id": "br-main", "parent": None})
    key: str = admin("/keys", {"account": "acct_invoke", "branch": "br-main"})["key"]
    return key

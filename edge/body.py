"""Reading and parsing request bodies, within the size limit."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from aiohttp import StreamReader, web

from edge.appkeys import SETTINGS
from edge.context import ctx_of
from edge.errors import BODY_TOO_LARGE, GatewayError, bad_request
from edge.inflate import ENCODINGS, Inflater, TooLarge, undecodable, unsupported
from edge.limits_parse import PARSE_SLOTS, needs_slot
from edge.request_limits import MAX_DEPTH, check_structure, too_deep
from edge.translate.gemini_request import check_field_names

# The connection is closed after a 413: the unread rest of the body must not be parsed as a
# next request, nor read just to be thrown away.
TOO_LARGE = GatewayError(413, BODY_TOO_LARGE, code="request_too_large", close=True)
# The deepest value orjson writes: a parsed body nested at most MAX_DEPTH levels, wrapped in
# this many more, is still written, and a deeper one is refused by the same call.
_WRITTEN_DEPTH = 254
_WRAPS = _WRITTEN_DEPTH - MAX_DEPTH
# A body that trickles in would hold its connection and handler for ever.
BODY_TIMEOUT = GatewayError(
    408, "The request body did not arrive in time.", code="request_timeout", close=True
)


async def _read_into(
    chunks: list[bytes], content: StreamReader, inflater: Inflater | None, limit: int
) -> None:
    """Read the body's (inflated) chunks into `chunks`; TooLarge past `limit` bytes."""
    size = 0
    async for chunk in content.iter_any():
        data = inflater.feed(chunk) if inflater is not None else chunk
        size += len(data)
        if size > limit:
            raise TooLarge
        chunks.append(data)
    if inflater is not None:
        inflater.finish()


async def read_body(request: web.Request) -> bytes:
    """The whole (inflated) body, refused with 413 as soon as it passes the limit (inflated
    bytes counted, `edge.inflate`), and with 408 when it takes longer than the body deadline."""
    settings = request.app[SETTINGS]
    limit = settings.body_limit
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    inflater: Inflater | None = None
    if encoding and encoding != "identity":
        if encoding not in ENCODINGS:
            raise unsupported(encoding)
        inflater = Inflater(encoding, limit)
    chunks: list[bytes] = []
    try:
        if request.content.is_eof():
            # All of it has arrived (a small body comes with its headers): reading it cannot
            # wait, so it needs no deadline (a timer armed and cancelled per request).
            await _read_into(chunks, request.content, inflater, limit)
        else:
            async with asyncio.timeout(settings.guards.body_timeout):
                await _read_into(chunks, request.content, inflater, limit)
    except TooLarge:
        chunks.clear()  # the error's traceback keeps this frame alive for a while
        raise TOO_LARGE from None
    except TimeoutError:
        raise BODY_TIMEOUT from None
    except web.RequestPayloadError as exc:
        # A broken chunked framing: the client's error, not ours.
        raise undecodable() from exc
    return b"".join(chunks)


class _Duplicate(Exception):
    """A key met twice in one object (raised from inside the exact check)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _colons_walked(payload: Any) -> int:
    """Keys of the parsed value plus the colons in its strings (keys and values)."""
    total = 0
    stack: list[Any] = [payload]
    while stack:
        node = stack.pop()
        if type(node) is dict:
            total += len(node)
            for key, value in node.items():
                total += key.count(":")
                kind = type(value)
                if kind is str:
                    total += value.count(":")
                elif kind is dict or kind is list:
                    stack.append(value)
        else:
            for value in node:
                kind = type(value)
                if kind is str:
                    total += value.count(":")
                elif kind is dict or kind is list:
                    stack.append(value)
    return total


def _colons_parsed(payload: Any) -> int:
    """Keys of the parsed value plus the colons in its strings, counted in its compact
    serialisation: there the only colons are those (orjson escapes none), and writing it in C
    costs less than a walk in Python unless the body is a few long texts."""
    try:
        return orjson.dumps(payload).count(b":")
    except orjson.JSONEncodeError:  # deeper than orjson writes (254 levels; it reads 1024)
        return _colons_walked(payload)


def _pairs(pairs: list[tuple[str, Any]]) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen.add(key)


def _colons_within_depth(raw: bytes, payload: Any) -> int:
    """`_colons_parsed` for a value nested at most MAX_DEPTH levels, else 400: the value is
    written wrapped in `_WRAPS` arrays (which add no colon), so orjson's own depth limit does
    the depth check in the same pass. A text with no more brackets than MAX_DEPTH cannot nest
    deeper (most bodies): it is written as it is, without building the wrapping (which cost
    more than the rest of the check)."""
    if raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH:
        return orjson.dumps(payload).count(b":")
    wrapped = payload
    for _ in range(_WRAPS):
        wrapped = [wrapped]
    try:
        return orjson.dumps(wrapped).count(b":")
    except orjson.JSONEncodeError:
        raise too_deep() from None


def duplicate_key(raw: bytes, payload: Any, parsed_colons: int | None = None) -> str | None:
    """The first key met twice in one object of the JSON text `raw` (keys compared after
    unescaping), None when there is none; `payload` is `raw` as already parsed.

    Exact and cheap: in JSON text every key has exactly one colon after it and every other colon
    is inside a string, written as is or as the escape `\\u003a`. So the raw text's colons and
    colon escapes equal the parsed keys plus the colons of the parsed strings exactly when no key
    was dropped as a duplicate (a dropped key, and whatever its dropped value held, make the raw
    side larger). Only when they differ is the body parsed a second time, keeping every pair, to
    name the key (or to clear it: a literal "\\u003a" text over-counts). `parsed_colons` is
    the parsed side's count when the caller has it."""
    raw_colons = raw.count(b":")
    if b"\\u003" in raw:  # rare: a colon (or a digit, `;<=>?`) written as an escape
        raw_colons += raw.count(b"\\u003a") + raw.count(b"\\u003A")
    if parsed_colons is None:
        parsed_colons = _colons_parsed(payload)
    if raw_colons == parsed_colons:
        return None
    try:
        json.loads(raw, object_pairs_hook=_pairs)
    except _Duplicate as found:
        return found.key
    except (RecursionError, ValueError) as exc:
        # Nested deeper than this second parser goes (orjson takes 1024 levels): unchecked.
        raise bad_request(
            "Request body is nested too deeply to check for duplicate keys.", code="invalid_body"
        ) from exc
    return None


def _shown(key: str) -> str:
    return key if len(key) <= 64 else key[:61] + "..."


def _shape(request: web.Request) -> str | None:
    try:
        return ctx_of(request).shape
    except KeyError:  # a request outside the middleware chain
        return None


def _account(request: web.Request) -> str:
    try:
        return ctx_of(request).account or ""
    except KeyError:  # a request outside the middleware chain
        return ""


async def read_json(request: web.Request) -> tuple[bytes, Any]:
    """The raw body and its JSON value; 400 when it is not a JSON object, when it holds more
    objects, arrays or elements than one request may (`edge.request_limits`, counted before it
    is parsed) or is nested deeper, when any object in it has a key twice (the raw bytes go
    upstream: a provider might read the other one), and on Gemini routes when one field is set
    under both of its names. A large body is read and parsed in one of the application's parse
    slots, when it has them (`edge.limits_parse`)."""
    slots = request.config_dict.get(PARSE_SLOTS)
    if slots is None or not needs_slot(request):
        return _parsed(request, await read_body(request))
    wait = request.app[SETTINGS].guards.body_timeout
    async with slots.slot(_account(request), wait):
        return _parsed(request, await read_body(request))


def _parsed(request: web.Request, raw: bytes) -> tuple[bytes, Any]:
    return raw, parse_body(raw, _shape(request))


def parse_body(raw: bytes, shape: str | None = None) -> Any:
    """The JSON object `raw`, checked as `read_json` checks a body (`shape`: the route's error
    shape, since Gemini routes also refuse one field set under both of its names)."""
    if not raw:
        raise bad_request("Request body is empty; expected a JSON object.")
    check_structure(raw)
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"Request body is not valid JSON: {exc.msg}.") from exc
    if not isinstance(payload, dict):
        raise bad_request("Request body must be a JSON object.")
    duplicate = duplicate_key(raw, payload, _colons_within_depth(raw, payload))
    if duplicate is not None:
        raise bad_request(
            f"Duplicate key {_shown(duplicate)!r} in the request body.",
            param=_shown(duplicate),
            code="duplicate_key",
        )
    if shape == "gemini":
        check_field_names(payload)
    return payload

"""Reading and parsing request bodies, within the size limit."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from edge.appkeys import SETTINGS
from edge.errors import BODY_TOO_LARGE, GatewayError, bad_request

# The connection is closed after a 413: the unread rest of the body must not be parsed as a
# next request, nor read just to be thrown away.
TOO_LARGE = GatewayError(413, BODY_TOO_LARGE, code="request_too_large", close=True)
# A body that trickles in would hold its connection and handler for ever.
BODY_TIMEOUT = GatewayError(
    408, "The request body did not arrive in time.", code="request_timeout", close=True
)


async def read_body(request: web.Request) -> bytes:
    """The whole (decompressed) body, refused with 413 as soon as it passes the limit, and with
    408 when it takes longer than the body deadline to arrive."""
    settings = request.app[SETTINGS]
    limit = settings.body_limit
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(settings.guards.body_timeout):
            async for chunk in request.content.iter_any():
                size += len(chunk)
                if size > limit:
                    chunks.clear()  # the error's traceback keeps this frame alive for a while
                    raise TOO_LARGE
                chunks.append(chunk)
    except TimeoutError:
        raise BODY_TIMEOUT from None
    except web.RequestPayloadError as exc:
        # A body its Content-Encoding cannot decode (or a broken chunked framing): the client's
        # error, not ours.
        raise GatewayError(
            400, "Request body could not be decoded.", code="invalid_body", close=True
        ) from exc
    return b"".join(chunks)


async def read_json(request: web.Request) -> tuple[bytes, Any]:
    """The raw body and its JSON value; 400 when it is not a JSON object."""
    raw = await read_body(request)
    if not raw:
        raise bad_request("Request body is empty; expected a JSON object.")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"Request body is not valid JSON: {exc.msg}.") from exc
    if not isinstance(payload, dict):
        raise bad_request("Request body must be a JSON object.")
    return raw, payload

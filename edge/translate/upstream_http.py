"""HTTP plumbing shared by the provider adapters: post JSON, map errors, read bodies and SSE."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from edge.errors import GatewayError
from edge.sse import SSEError, SSEEvent, SSEParser
from edge.translate.upstream import UpstreamContext
from edge.upstream.client import (
    TOO_LARGE,
    interrupted,
    open_upstream,
    read_capped,
    read_error_body,
)
from edge.upstream.errors import upstream_error
from edge.upstream.headers import forwarded

Forwarded = list[tuple[str, str]]


def malformed(detail: str) -> GatewayError:
    """The provider sent something that is not a valid answer of its own API."""
    message = f"The upstream provider sent a malformed response: {detail}."
    return GatewayError(502, message, code="upstream_malformed")


@contextlib.asynccontextmanager
async def post_json(
    up: UpstreamContext, url: str, headers: dict[str, str], body: dict[str, Any]
) -> AsyncIterator[tuple[aiohttp.ClientResponse, Forwarded]]:
    """POST a JSON body; an error status becomes the client's error, with rate-limit headers."""
    async with open_upstream(
        up.session,
        url,
        orjson.dumps(body),
        headers,
        up.timeouts,
        admitted=up.admitted,
        signer=up.signer(),
    ) as resp:
        passed = forwarded(resp.headers.items())
        if resp.status >= 400:
            try:
                raw = await read_error_body(resp)
            except (aiohttp.ClientError, TimeoutError):
                raw = b""
            raise upstream_error(resp.status, raw, passed)
        yield resp, passed


async def read_json(resp: aiohttp.ClientResponse, limit: int) -> Any:
    """A whole JSON body, within the size limit."""
    try:
        raw = await read_capped(resp, limit)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise interrupted() from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise malformed("the body is not JSON") from exc


async def sse_events(resp: aiohttp.ClientResponse, limit: int) -> AsyncIterator[SSEEvent]:
    """The provider's SSE events; transport failures become an interruption error."""
    parser = SSEParser()
    received = 0
    try:
        async for chunk in resp.content.iter_any():
            received += len(chunk)
            if received > limit:
                raise GatewayError(502, TOO_LARGE, code="upstream_too_large")
            for event in parser.feed(chunk):
                yield event
        for event in parser.close():
            yield event
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
        raise interrupted() from exc
    except SSEError as exc:
        raise malformed(str(exc)) from exc


def event_json(event: SSEEvent) -> dict[str, Any]:
    """An event's data as a JSON object."""
    try:
        data = orjson.loads(event.data)
    except orjson.JSONDecodeError as exc:
        raise malformed("an event is not JSON") from exc
    if not isinstance(data, dict):
        raise malformed("an event is not a JSON object")
    return data

"""The Amazon Bedrock provider adapter: Converse and ConverseStream, signed with SigV4, the
stream's binary event-stream framing decoded by botocore's parser."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import aiohttp
import orjson

from edge.errors import GatewayError
from edge.translate import neutral as n
from edge.translate.bedrock_inbound import (
    ConverseStreamDecoder,
    converse_response,
    exception_error,
)
from edge.translate.bedrock_outbound import converse_body
from edge.translate.upstream import StreamCall, UpstreamContext
from edge.translate.upstream_http import Forwarded, malformed, post_json, read_json
from edge.upstream.auth import upstream_headers
from edge.upstream.client import TOO_LARGE, interrupted
from edge.upstream.endpoints import converse_url

try:  # the `bedrock` extra (without it, a Bedrock call is refused before this is reached)
    from botocore.eventstream import EventStreamBuffer, ParserError
except ImportError:  # pragma: no cover - the extra is installed wherever tests run
    EventStreamBuffer = ParserError = None

EVENT_STREAM = "application/vnd.amazon.eventstream"


def _payload(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise malformed("an event is not JSON") from exc
    if not isinstance(data, dict):
        raise malformed("an event is not a JSON object")
    return data


async def converse_events(
    resp: aiohttp.ClientResponse, limit: int
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event type, payload) of each event-stream message; an exception message raises."""
    buffer = EventStreamBuffer()
    received = 0
    try:
        async for chunk in resp.content.iter_any():
            received += len(chunk)
            if received > limit:
                raise GatewayError(502, TOO_LARGE, code="upstream_too_large")
            buffer.add_data(chunk)
            for message in buffer:
                headers = message.headers
                payload = _payload(message.payload)
                kind = headers.get(":message-type")
                if kind == "event":
                    yield str(headers.get(":event-type")), payload
                elif kind in ("exception", "error"):
                    name = headers.get(":exception-type") or headers.get(":error-code")
                    raise exception_error(str(name), payload)
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
        raise interrupted() from exc
    except ParserError as exc:  # a bad checksum or length: the framing is broken
        raise malformed(f"the event stream is corrupt ({type(exc).__name__})") from exc


async def decode_converse_stream(
    source: AsyncIterator[tuple[str, dict[str, Any]]], model: str
) -> AsyncGenerator[n.Event, None]:
    """Neutral events from ConverseStream; it must reach its messageStop."""
    decoder = ConverseStreamDecoder(model)
    async for kind, data in source:
        for out in decoder.feed(kind, data):
            yield out
    if not decoder.stopped:
        raise interrupted()
    for out in decoder.finish():
        yield out


class BedrockUpstream:
    """Speaks Bedrock's Converse API to the provider."""

    async def complete(self, up: UpstreamContext, req: n.Request) -> tuple[n.Response, Forwarded]:
        """A whole answer."""
        url = converse_url(up.route.provider, req.model, stream=False)
        headers = upstream_headers(up.route.provider, {})
        async with post_json(up, url, headers, converse_body(req)) as (resp, passed):
            return converse_response(await read_json(resp, up.body_limit), req.model), passed

    @contextlib.asynccontextmanager
    async def stream(self, up: UpstreamContext, req: n.Request) -> AsyncIterator[StreamCall]:
        """A streamed answer."""
        url = converse_url(up.route.provider, req.model, stream=True)
        headers = {**upstream_headers(up.route.provider, {}), "Accept": EVENT_STREAM}
        async with post_json(up, url, headers, converse_body(req)) as (resp, passed):
            frames = converse_events(resp, up.body_limit)
            events = decode_converse_stream(frames, req.model)
            async with contextlib.aclosing(events):
                yield StreamCall(events=events, headers=passed)

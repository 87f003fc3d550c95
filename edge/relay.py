"""Same API on both sides: relay the provider's bytes unchanged, reading only the usage."""

from __future__ import annotations

import logging

import aiohttp
import orjson
from aiohttp import web

from edge.appkeys import HTTP, SETTINGS
from edge.context import RequestContext
from edge.errors import GatewayError
from edge.metrics import note_error
from edge.partial_usage import charge_cut_stream
from edge.sse import SSEError, SSEEvent, SSEParser
from edge.streaming import start_stream
from edge.upstream.client import (
    TOO_LARGE,
    interrupted,
    open_upstream,
    read_capped,
    read_error_body,
)
from edge.upstream.errors import body_retry_after, relayable, upstream_error
from edge.upstream.headers import forwarded
from edge.upstream.signing import Signer
from edge.upstream.wire import WireSpec

log = logging.getLogger(__name__)


def _outgoing(spec: WireSpec, event: SSEEvent) -> bytes | None:
    """What the client gets for one event: its bytes, repaired bytes, or nothing."""
    if spec.hide_event is not None and spec.hide_event(event):
        return None
    if spec.repair_event is not None:
        repaired = spec.repair_event(event)
        if repaired is not None:
            return repaired
    return event.raw


async def relay(
    request: web.Request,
    ctx: RequestContext,
    url: str,
    headers: dict[str, str],
    body: bytes,
    spec: WireSpec,
    signer: Signer | None = None,
) -> web.StreamResponse:
    """Call the provider and relay its answer, stream or not, with rate-limit headers."""
    settings = request.app[SETTINGS]
    async with open_upstream(
        request.app[HTTP],
        url,
        body,
        headers,
        settings.timeouts,
        admitted=ctx.reservation,
        signer=signer,
    ) as upstream:
        passed = forwarded(upstream.headers.items())
        if upstream.status >= 400:
            raw = await read_error_body(upstream)
            if relayable(upstream.status, raw):
                # Same API on both sides and nothing to hide: the provider's own error, exact.
                return _exact_error(upstream, raw, passed)
            raise upstream_error(upstream.status, raw, passed)
        if not upstream.headers.get("Content-Type", "").startswith("text/event-stream"):
            return await _whole(ctx, upstream, passed, spec, settings.upstream_body_limit)
        return await _stream(request, ctx, upstream, passed, spec, settings.upstream_body_limit)


def _exact_error(
    upstream: aiohttp.ClientResponse,
    raw: bytes,
    passed: list[tuple[str, str]],
) -> web.Response:
    response = web.Response(status=upstream.status, body=raw)
    response.headers["Content-Type"] = upstream.headers.get("Content-Type", "application/json")
    for name, value in passed:
        response.headers.add(name, value)
    delay = body_retry_after(upstream.status, raw, passed)
    if delay is not None:
        response.headers["Retry-After"] = delay
    return response


async def _whole(
    ctx: RequestContext,
    upstream: aiohttp.ClientResponse,
    passed: list[tuple[str, str]],
    spec: WireSpec,
    limit: int,
) -> web.Response:
    try:
        raw = await read_capped(upstream, limit)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise interrupted() from exc
    try:
        ctx.usage = spec.usage_from_body(orjson.loads(raw))
    except orjson.JSONDecodeError:
        log.warning("upstream body is not JSON; usage unknown")
    response = web.Response(status=upstream.status, body=raw)
    response.headers["Content-Type"] = upstream.headers.get("Content-Type", "application/json")
    for name, value in passed:
        response.headers.add(name, value)
    ctx.mark_first_byte()
    return response


async def _stream(
    request: web.Request,
    ctx: RequestContext,
    upstream: aiohttp.ClientResponse,
    passed: list[tuple[str, str]],
    spec: WireSpec,
    limit: int,
) -> web.StreamResponse:
    response = await start_stream(request, ctx, passed, terminal=spec.stream_error)
    parser = SSEParser()
    ended = False
    received = 0
    try:
        async for chunk in upstream.content.iter_any():
            received += len(chunk)
            if received > limit:
                raise GatewayError(502, TOO_LARGE, code="upstream_too_large")
            out = []
            for event in parser.feed(chunk):
                ended = ended or spec.is_terminal(event)
                usage = spec.usage_from_event(event)
                if usage is not None:
                    ctx.usage = usage
                data = _outgoing(spec, event)
                if data is not None:
                    out.append(data)
            if out:
                ctx.stream_events += len(out)
                await response.write(b"".join(out))
        for event in parser.close():
            ended = ended or spec.is_terminal(event)
            data = _outgoing(spec, event)
            if data is not None:
                ctx.stream_events += 1
                await response.write(data)
        if not ended:
            raise interrupted()
    except GatewayError as err:
        await _terminal(ctx, response, spec, err)
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError, SSEError):
        cut = interrupted()
        await _terminal(ctx, response, spec, cut)
    finally:
        if not ended:  # cut by the client, the provider or a limit: charge what was done
            charge_cut_stream(ctx)
    await response.write_eof()
    return response


async def _terminal(
    ctx: RequestContext, response: web.StreamResponse, spec: WireSpec, err: GatewayError
) -> None:
    """End a started stream with the API's error event: never a silent clean end."""
    note_error(ctx, err)
    await response.write(spec.stream_error(err))

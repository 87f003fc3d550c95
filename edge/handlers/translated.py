"""Serving a request through the neutral model: provider adapter in, client renderer out."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

import aiohttp
import orjson
from aiohttp import web

from edge.appkeys import HTTP, SETTINGS
from edge.context import RequestContext
from edge.errors import GatewayError
from edge.metrics import note_error
from edge.partial_usage import charge_cut_stream
from edge.routing import Route
from edge.sse import SSEError
from edge.streaming import start_stream
from edge.translate import neutral as n
from edge.translate.adapters import adapter_for
from edge.translate.upstream import UpstreamContext
from edge.upstream.client import interrupted
from edge.upstream.signing import CREDENTIALS

log = logging.getLogger(__name__)
FAILED = "The gateway failed to process the request."


class StreamRenderer(Protocol):
    """Neutral events to one client API's stream bytes."""

    def feed(self, event: n.Event) -> bytes:
        """Bytes for one event (possibly none)."""

    def close(self) -> bytes:
        """Bytes that end a complete stream."""


class ClientApi(Protocol):
    """One client API's rendering of neutral answers."""

    def render_response(self, resp: n.Response) -> bytes:
        """A whole response body."""

    def stream_renderer(self) -> StreamRenderer:
        """A renderer for one stream."""

    def stream_error(self, err: GatewayError) -> bytes:
        """The terminal error event of a started stream."""


def _track_usage(ctx: RequestContext, event: n.Event) -> None:
    if isinstance(event, n.Finish | n.UsageUpdate) and event.usage is not None:
        ctx.usage = event.usage


async def serve(
    request: web.Request,
    ctx: RequestContext,
    route: Route,
    req: n.Request,
    client: ClientApi,
    content_type: str = "text/event-stream",
) -> web.StreamResponse:
    """Run a neutral request on the route's provider and answer in the client's API.

    `content_type` is the stream's (Gemini streams a JSON array unless asked for SSE).
    """
    settings = request.app[SETTINGS]
    up = UpstreamContext(
        session=request.app[HTTP],
        route=route,
        timeouts=settings.timeouts,
        body_limit=settings.upstream_body_limit,
        admitted=ctx.reservation,
        credentials=request.app[CREDENTIALS],
    )
    adapter = adapter_for(route)
    if not req.stream:
        resp, headers = await adapter.complete(up, req)
        # What the provider left out, every client API still has: the model and a time.
        resp.model = resp.model or req.model
        resp.created = resp.created or int(time.time())
        ctx.usage = resp.usage
        whole = web.Response(body=client.render_response(resp), content_type="application/json")
        for name, value in headers:
            whole.headers.add(name, value)
        ctx.mark_first_byte()
        return whole
    async with adapter.stream(up, req) as call:
        events = aiter(call.events)
        # The first event is awaited before any byte is sent, so an early failure is still an
        # ordinary JSON error with its status.
        first = await anext(events)
        if isinstance(first, n.Start):
            first.model = first.model or req.model
            first.created = first.created or int(time.time())
        _track_usage(ctx, first)
        renderer = client.stream_renderer()
        response = await start_stream(
            request, ctx, call.headers, content_type, terminal=client.stream_error
        )
        complete = False
        try:
            ctx.stream_events += 1
            await response.write(renderer.feed(first))
            async for event in events:
                _track_usage(ctx, event)
                data = renderer.feed(event)
                if data:
                    ctx.stream_events += 1
                    await response.write(data)
            await response.write(renderer.close())
            complete = True
        except GatewayError as err:
            note_error(ctx, err)
            await response.write(client.stream_error(err))
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError, SSEError):
            cut = interrupted()
            note_error(ctx, cut)
            await response.write(client.stream_error(cut))
        except (ConnectionResetError, asyncio.CancelledError):
            raise  # the client went away: nothing to write
        except Exception:  # a fault of ours mid-stream: the API's terminal event, never a 500
            log.exception("translated stream failed", extra={"request_id": ctx.request_id})
            fault = GatewayError(500, FAILED, code="internal_error")
            note_error(ctx, fault)
            await response.write(client.stream_error(fault))
        finally:
            if not complete:  # cut by the client or the provider: charge what was done
                charge_cut_stream(ctx)
        await response.write_eof()
        return response


def json_bytes(obj: object) -> bytes:
    """Compact JSON."""
    return orjson.dumps(obj)

"""Starting a streamed response: every header goes out with `prepare()`, so all are set here."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from edge.appkeys import SETTINGS
from edge.context import RequestContext
from edge.lifecycle import TerminalWriter
from edge.shutdown import track_stream
from edge.stream_guard import GuardedStream


async def start_stream(
    request: web.Request,
    ctx: RequestContext,
    forwarded: Iterable[tuple[str, str]] = (),
    content_type: str = "text/event-stream",
    terminal: TerminalWriter | None = None,
) -> web.StreamResponse:
    """Prepare an SSE response carrying our headers and the upstream's forwarded ones.

    `terminal` renders the API's terminal error event: shutdown uses it to end the stream. The
    response drops a client that stops reading (`edge.stream_guard`).
    """
    response = GuardedStream(
        stall_timeout=request.app[SETTINGS].guards.stream_write_timeout,
        request_id=ctx.request_id,
    )
    response.content_type = content_type
    if content_type == "text/event-stream":
        response.charset = "utf-8"
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"  # nginx must not buffer a stream
    response.headers["x-request-id"] = ctx.request_id
    for name, value in ctx.response_headers.items():
        response.headers[name] = value
    for name, value in forwarded:
        response.headers.add(name, value)
    ctx.stream = True
    ctx.status = 200
    await response.prepare(request)
    ctx.mark_first_byte()
    track_stream(request, ctx, response, terminal)
    return response

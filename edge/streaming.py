"""Starting a streamed response: every header goes out with `prepare()`, so all are set here.

Streams the gateway writes itself and that may wait long between events (a background run's
resume stream) are aiohttp-sse event sources: its keep-alive comments keep proxies and load
balancers from closing an idle connection. Relayed and translated streams send as the provider
does and need none.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from edge.appkeys import SETTINGS
from edge.context import RequestContext
from edge.lifecycle import TerminalWriter
from edge.shutdown import track_stream
from edge.stream_guard import GuardedStream


class KeptAliveStream(GuardedStream, EventSourceResponse):
    """A guarded stream that writes an SSE comment (`: ping`) when idle for a while."""

    DEFAULT_SEPARATOR = "\n"  # the gateway's events end in LF, like the providers'

    def __init__(self, *, stall_timeout: float, request_id: str, interval: float) -> None:
        super().__init__(stall_timeout=stall_timeout, request_id=request_id)
        self._ping_interval = interval
        self._allow_all_methods = True

    async def write_eof(self, data: bytes = b"") -> None:
        """Stop the pings, then end the stream."""
        self.stop_pings()
        await super().write_eof(data)

    def stop_pings(self) -> None:
        """End the keep-alive task (also when the handler leaves without write_eof)."""
        if self._ping_task is not None and not self._ping_task.done():
            self._ping_task.cancel()


async def start_stream(
    request: web.Request,
    ctx: RequestContext,
    forwarded: Iterable[tuple[str, str]] = (),
    content_type: str = "text/event-stream",
    terminal: TerminalWriter | None = None,
    keepalive: bool = False,
) -> web.StreamResponse:
    """Prepare an SSE response carrying our headers and the upstream's forwarded ones.

    `terminal` renders the API's terminal error event: shutdown uses it to end the stream. The
    response drops a client that stops reading (`edge.stream_guard`). With `keepalive` it also
    writes a comment line every `EDGE_STREAM_KEEPALIVE` seconds (`KeptAliveStream`).
    """
    guards = request.app[SETTINGS].guards
    response: GuardedStream
    if keepalive:
        response = KeptAliveStream(
            stall_timeout=guards.stream_write_timeout,
            request_id=ctx.request_id,
            interval=guards.stream_keepalive,
        )
    else:
        response = GuardedStream(
            stall_timeout=guards.stream_write_timeout, request_id=ctx.request_id
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

"""The connection layer edge serves with: a deadline for every request head (aiohttp has none,
so a client sending its headers a byte at a time, or nothing at all, would hold a connection for
ever), malformed requests answered briefly as edge, without a traceback in the logs, and the
gateway's configured secrets known to the error scrubber in everything it serves."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

import orjson
from aiohttp import http_exceptions, web

from edge.upstream.errors import CONFIGURED_SECRETS

log = logging.getLogger("edge.connection")
HEAD_TOO_LARGE = "Request line or header fields too large."


def _client_error(status: int, exc: BaseException | None) -> tuple[int, str]:
    """Status and message for a request the HTTP parser refused."""
    too_many = isinstance(exc, http_exceptions.BadHttpMessage) and "Too many headers" in str(exc)
    if isinstance(exc, http_exceptions.LineTooLong) or too_many:
        return 431, HEAD_TOO_LARGE
    if isinstance(exc, http_exceptions.HttpProcessingError) and exc.message:
        # The parser's first line says what is wrong; the rest echoes the client's bytes.
        first = exc.message.strip().splitlines()[0].strip().rstrip(":")
        return status, f"Malformed HTTP request: {first[:200]}"
    return status, "Malformed HTTP request."


class EdgeRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, with a request-head deadline and terse client errors."""

    __slots__ = ("_edge_head_timeout", "_edge_head_timer", "_edge_heads", "_edge_secrets")

    def __init__(
        self, *args: Any, head_timeout: float, secrets: tuple[str, ...] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._edge_head_timeout = head_timeout
        self._edge_head_timer: asyncio.TimerHandle | None = None
        self._edge_heads = 0
        self._edge_secrets = secrets

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the first head's deadline now: a client that never sends a byte is closed
        too. The connection's task runs with the gateway's secrets known to the scrubber."""
        context = contextvars.copy_context()
        context.run(CONFIGURED_SECRETS.set, self._edge_secrets)
        context.run(super().connection_made, transport)
        self._start_head_timer(0)

    def _awaiting_head(self) -> bool:
        # Between requests aiohttp waits on `_waiter`; before the first one nothing has run.
        waiter = self._waiter
        return (waiter is not None and not waiter.done()) or self._request_count == 0

    def data_received(self, data: bytes) -> None:
        """Feed the parser; start the head deadline on the first byte of an unfinished head."""
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:
            self._stop_head_timer()
        elif self._edge_head_timer is None and self._awaiting_head():
            self._start_head_timer(heads)

    def _start_head_timer(self, heads: int) -> None:
        self._edge_heads = heads
        self._edge_head_timer = self._loop.call_later(self._edge_head_timeout, self._head_deadline)

    def _stop_head_timer(self) -> None:
        if self._edge_head_timer is not None:
            self._edge_head_timer.cancel()
            self._edge_head_timer = None

    def _head_deadline(self) -> None:
        self._edge_head_timer = None
        if self._request_count == self._edge_heads and self._awaiting_head():
            log.info("request head not received in time: connection closed")
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        """Drop the deadline with the connection."""
        self._stop_head_timer()
        super().connection_lost(exc)

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """A request body that cannot be decoded, met while aiohttp drains what the handler did
        not read, is the client's doing: a debug line, not an error with a traceback."""
        if isinstance(kwargs.get("exc_info"), web.RequestPayloadError):
            self.logger.debug(*args, **kwargs)
            return
        super().log_exception(*args, **kwargs)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request the parser refused is the client's doing: a JSON 4xx and a debug line."""
        if status >= 500:
            response = super().handle_error(request, status, exc, message)
        else:
            log.debug("malformed request refused: %s", exc)
            status, text = _client_error(status, exc)
            body = {"error": {"message": text, "type": "invalid_request_error", "code": None}}
            response = web.Response(
                status=status, body=orjson.dumps(body), content_type="application/json"
            )
            response.force_close()
        # These answers bypass the application's on_response_prepare hooks.
        response.headers["Server"] = "edge"
        return response


class EdgeServer(web.Server):
    """aiohttp's low-level server, building `EdgeRequestHandler`s."""

    head_timeout: float = 15.0
    secrets: tuple[str, ...] = ()

    def __call__(self) -> EdgeRequestHandler:
        """A handler for one new connection."""
        return EdgeRequestHandler(
            self,
            loop=self._loop,
            head_timeout=self.head_timeout,
            secrets=self.secrets,
            **self._kwargs,
        )


class EdgeRunner(web.AppRunner):
    """An AppRunner whose server is an `EdgeServer`."""

    def __init__(
        self,
        app: web.Application,
        *,
        head_timeout: float,
        secrets: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self._edge_head_timeout = head_timeout
        self._edge_secrets = secrets

    async def setup(self) -> None:
        """Start the application; what its start-up begins (background runs) runs with the
        gateway's secrets known to the scrubber."""
        token = CONFIGURED_SECRETS.set(self._edge_secrets)
        try:
            await super().setup()
        finally:
            CONFIGURED_SECRETS.reset(token)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # aiohttp builds its Server in private code; the subclass only changes which handler
        # class `__call__` builds, so the instance is re-classed rather than rebuilt.
        server.__class__ = EdgeServer
        assert isinstance(server, EdgeServer)
        server.head_timeout = self._edge_head_timeout
        server.secrets = self._edge_secrets
        return server

"""Running the gateway: the C HTTP parser, explicit header limits, handler cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

from aiohttp import http_parser, web

from edge.app import create_app
from edge.settings import Settings

log = logging.getLogger("edge.server")

# Explicit request-head limits (aiohttp's defaults, stated so they cannot drift).
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 128


def require_c_parser() -> None:
    """Refuse to run on aiohttp's pure-Python HTTP parser: slower and more lenient."""
    parser = getattr(http_parser, "HttpRequestParser", None)
    if parser is None or parser.__module__ != "aiohttp._http_parser":
        raise SystemExit(
            "edge needs aiohttp's C HTTP parser (unset AIOHTTP_NO_EXTENSIONS and install a "
            "binary aiohttp wheel)"
        )


def make_runner(app: web.Application) -> web.AppRunner:
    """A runner with the server settings edge relies on."""
    return web.AppRunner(
        app,
        handler_cancellation=True,  # a client that leaves cancels its handler and upstream call
        access_log=None,  # edge writes its own JSON line per request
        max_line_size=MAX_LINE_SIZE,
        max_field_size=MAX_FIELD_SIZE,
        max_headers=MAX_HEADERS,
        shutdown_timeout=30.0,
    )


async def serve(
    settings: Settings,
    on_started: Callable[[web.Application], Awaitable[None]] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM."""
    require_c_parser()
    app = create_app(settings)
    runner = make_runner(app)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=sys.platform != "win32")
    await site.start()
    log.info("listening", extra={"fields": {"host": settings.host, "port": settings.port}})
    if on_started is not None:
        await on_started(app)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
